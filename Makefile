# Two commands on a fresh machine:  `make demo` opens the TUI on its embedded demo testbed,
# `make test` runs the tests (`make example` runs a plain-Python scenario over real OpenSSH).
# Both create the virtual environment in .venv and, when run as root, install the system
# packages they need (openssh-server for the test hosts, xauth for their X11 forwarding, graphviz for graph
# images).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
SYSTEM_PACKAGES := openssh-server graphviz xauth

.PHONY: demo example test lint bench system-deps venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	@# the distribution was called apssh-tui before it became apssh: drop a stale install
	$(VENV)/bin/pip uninstall -q -y apssh-tui 2>/dev/null || true
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

system-deps:
	@if [ -x /usr/sbin/sshd ] && command -v dot >/dev/null && command -v xauth >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); \
	else \
	  echo "missing system packages: run  sudo apt-get install -y $(SYSTEM_PACKAGES)"; exit 1; \
	fi

demo: system-deps venv
	$(VENV)/bin/apssh-tui --demo

example: system-deps venv
	$(PY) examples/demo.py

test: system-deps venv
	$(PY) -m pytest

# benchmarks of issue 10 against the peers (root: a quiet user and sshd on 127.0.x.y:22);
# options: BENCH_QUICK=1 (a few minutes), BENCH_SIZES="10 100 250", BENCH_ROUNDS=3,
# BENCH_ONLY="hostname output transfer library tui", BENCH_LABEL=name; see bench/README.md
bench: system-deps venv
	$(PY) bench/run.py

lint: venv
	$(VENV)/bin/ruff check apssh apssh_tui tests examples

clean:
	rm -rf $(VENV) .pytest_cache
