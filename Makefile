# `make demo` and `make test` install the pinned stack into .venv/ first when it is
# missing or older than the pins (requirements.txt), so each is one command on a fresh machine.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stvit_mm_installed
PYTEST_ARGS ?=

.PHONY: install test demo demo-seg demo-cls compare compare-seg clean-venv

$(STAMP): requirements.txt $(wildcard requirements/*.txt) setup.py tools/install.sh
	bash tools/install.sh

# Always re-checks the stack; cheap when everything is already there.
install:
	bash tools/install.sh

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) tools/quickstart.py det $(DEMO_ARGS)

demo-seg: $(STAMP)
	$(PY) tools/quickstart.py seg $(DEMO_ARGS)

# The ImageNet classifier (mmpretrain) on the shapes in the ImageNet layout: top-1.
demo-cls: $(STAMP)
	$(PY) tools/quickstart.py cls $(DEMO_ARGS)

# The quickstart and its Swin twin trained the same way, then the mini
# Table 5 / Table 14 (stvit_mm/apis/compare.py).
compare: $(STAMP)
	$(PY) tools/quickstart.py det --compare $(DEMO_ARGS)

compare-seg: $(STAMP)
	$(PY) tools/quickstart.py seg --compare $(DEMO_ARGS)

clean-venv:
	rm -rf $(VENV)
