VENV ?= .venv
PY := $(VENV)/bin/python
# Test processes (pytest-xdist; each test file runs whole on one of them): two keep both cores
# of a 2-core machine busy (558 tests in 8-9 min with the shared compilation cache, against
# 11-14 min in one process; README).
TEST_WORKERS ?= 2

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Reinstalled when setup.cfg (the dependencies) changes, so an existing venv gets new test tools.
$(VENV)/.installed: setup.cfg | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile

demo: $(VENV)/.installed
	$(PY) experiments/learn_model.py --config=configs/learn_demo.py --workdir=workdirs/demo

.PHONY: test demo
