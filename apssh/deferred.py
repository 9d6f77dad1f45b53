"""Deferred evaluation: command text that is only known while the scenario runs.

A scheduler is built before anything runs, so a command that needs the output of
an earlier command is written as a :class:`Deferred` Jinja2 template over a
:class:`Variables` environment; a :class:`Capture` tells a command which variable
receives its output.

A captured value is data, not shell code: write ``{{ name | quote }}`` to put it in a
command line as one shell word (``shlex.quote``), so that ``a; rm -rf ~``, a newline or a
quote in the value arrive intact and run nothing.  A raw ``{{ name }}`` is right only for
a value you wrote yourself, e.g. a ``-D`` variable holding a whole command line.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any


def quote(value: Any) -> str:
    """The ``quote`` template filter: ``value`` as one shell word (``shlex.quote`` of its text)."""
    return shlex.quote(str(value))


#: filters added to every template environment of apssh (Deferred and YAML scenarios)
TEMPLATE_FILTERS = {"quote": quote}

_JINJA = None


def _jinja():
    """The template environment, made at the first Deferred (Jinja2 is imported only then: the
    plain ``apssh`` command does not pay for it)."""
    global _JINJA
    if _JINJA is None:
        import jinja2  # noqa: PLC0415

        # StrictUndefined: a typo in a template must fail loudly, not run an empty command
        _JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
        _JINJA.filters.update(TEMPLATE_FILTERS)
    return _JINJA


def template_errors() -> tuple[type[Exception], ...]:
    """Jinja2's TemplateError when Jinja2 is loaded, else nothing (no template was made, so no
    template can fail): for ``except (..., *template_errors())``."""
    jinja2 = sys.modules.get("jinja2")
    return (jinja2.TemplateError,) if jinja2 is not None else ()


def is_undefined_error(exc: BaseException) -> bool:
    """Whether ``exc`` is Jinja2's UndefinedError (a variable not captured yet)."""
    jinja2 = sys.modules.get("jinja2")
    return jinja2 is not None and isinstance(exc, jinja2.UndefinedError)


class Variables(dict):
    """A namespace of values computed during a run, by item or by attribute.

    ``variables.foo`` and ``variables['foo']`` are the same value.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no variable named {name!r} (known: {sorted(self)})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


class StrLikeMixin:
    """Lets an object stand where a ``str`` is expected, without evaluating it early.

    Concatenation with a str gives another object of the same kind (still deferred);
    ``str()`` evaluates.  Subclasses provide ``_template_text()``, ``render()`` and
    ``dup_from_string(text)``.
    """

    def _template_text(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def dup_from_string(self, new_template: str):  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:
        return self.render()

    def __add__(self, other: Any):
        return self.dup_from_string(self._template_text() + _as_template(other))

    def __radd__(self, other: Any):
        return self.dup_from_string(_as_template(other) + self._template_text())

    def __contains__(self, text: str) -> bool:
        return text in self._template_text()

    def __len__(self) -> int:
        return len(self._template_text())


def _as_template(value: Any) -> str:
    """Template text of a Deferred, or a plain value escaped as a Jinja literal."""
    if isinstance(value, StrLikeMixin):
        return value._template_text()
    text = str(value)
    if "{{" in text or "{%" in text or "{#" in text:
        return "{% raw %}" + text + "{% endraw %}"
    return text


class Deferred(StrLikeMixin):
    """A Jinja2 template rendered against ``variables`` when the command runs.

    Args:
        template: Jinja2 text, e.g. ``"ping -c 1 {{ peer | quote }}"``; a variable missing
            at render time raises :class:`jinja2.UndefinedError` naming it.  The ``quote``
            filter makes a captured value one shell word: use it for every captured value.
        variables: the :class:`Variables` environment filled during the run.

    Beware of f-strings: write ``{{{{ name | quote }}}}`` inside one to keep
    ``{{ name | quote }}``.
    """

    def __init__(self, template: str, variables: Variables):
        if not isinstance(template, str):
            raise TypeError(f"Deferred template must be a str, got {type(template).__name__}")
        self.template = template
        self.variables = variables
        environment = _jinja()
        try:
            self._compiled = environment.from_string(template)
        except sys.modules["jinja2"].TemplateSyntaxError as exc:
            raise ValueError(f"Deferred template {template!r}: {exc.message}") from exc

    def _template_text(self) -> str:
        return self.template

    def render(self) -> str:
        """The template evaluated with the variables as they are now."""
        return self._compiled.render(**self.variables)

    def dup_from_string(self, new_template: str) -> Deferred:
        """A new Deferred over the same Variables environment, with another template."""
        return Deferred(new_template, self.variables)

    def __repr__(self) -> str:
        return f"Deferred({self.template!r})"


class Capture:
    """Where a command stores its output: variable ``varname`` of ``variables``.

    The captured value is the command's stdout, with its final newline removed.
    """

    def __init__(self, varname: str, variables: Variables):
        if not isinstance(varname, str) or not varname.isidentifier():
            raise ValueError(f"Capture variable name must be an identifier, got {varname!r}")
        self.varname = varname
        self.variables = variables

    def store(self, text: str) -> None:
        """Record ``text`` (trailing newline dropped) as the variable's value."""
        self.variables[self.varname] = text[:-1] if text.endswith("\n") else text

    def __repr__(self) -> str:
        return f"Capture({self.varname!r})"


def render(value: Any) -> str:
    """The text of a command part: Deferred-like objects are evaluated now."""
    if isinstance(value, StrLikeMixin):
        return value.render()
    return str(value)
