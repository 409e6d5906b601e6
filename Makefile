# The two entry points of the README. Both create .venv (tools/setup_env.sh) when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV

.PHONY: env test demo
env:
	bash tools/setup_env.sh

test: env
	$(PY) -m pytest -q --doctest-modules mmdet_compconv tests

demo: env
	bash tools/demo.sh
