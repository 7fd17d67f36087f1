VENV ?= .venv
PY := $(VENV)/bin/python

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'

test: $(PY)
	$(PY) -m pytest tests

demo: $(PY)
	$(PY) experiments/learn_model.py --config=configs/learn_demo.py --workdir=workdirs/demo

.PHONY: test demo
