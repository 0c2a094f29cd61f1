# Two commands: `make demo` (set up, then run the main job on specs/hrnet.yaml) and `make test`.
# Both create .venv on first use and are safe to run again.

PYTHON ?= python3
VENV   ?= .venv
# torch is pinned on purpose: an unpinned requirement in an empty environment pulls the CUDA
# build (several GB). Override for another platform, e.g. make test TORCH='torch==2.5.1'.
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin
SPEC   ?= specs/hrnet.yaml

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: setup
	$(BIN)/archgraph validate $(SPEC)
	$(BIN)/archgraph validate $(SPEC) --set width=48 --set head=pose
	$(BIN)/archgraph compile $(SPEC) --set width=18 --device cpu
	$(BIN)/python -c "import archgraph, torch; m = archgraph.build('$(SPEC)', width=18).eval(); \
	print('HRNet-W18 logits:', tuple(m(torch.randn(1, 3, 224, 224)).shape))"

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
