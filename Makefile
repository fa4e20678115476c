# The two commands of the README.  Both create .venv on first use and install biobench with
# its plugins; nothing else needs to be installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.biobench-installed
# torch and torchvision must match for timm; override for another platform, e.g.
#   make demo TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
EXTRAS ?= test,orl,onnx
# Plugin distributions that live in this repository but install separately (optional extras).
LOCAL_PLUGINS ?= plugins/biobench-dlib
OUTPUT ?= leaderboards

.PHONY: demo test lint clean-venv

$(STAMP): Makefile pyproject.toml $(addsuffix /pyproject.toml,$(LOCAL_PLUGINS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	for p in $(LOCAL_PLUGINS); do $(BIN)/python -m pip install --quiet -e "$$p" || exit 1; done
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/biobench run --protocol quick --output $(OUTPUT)
	@echo
	@echo "Leaderboard: $(OUTPUT)/quick.md and $(OUTPUT)/quick.csv"
	@echo "Run records: $(OUTPUT)/runs/quick/"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean-venv:
	rm -rf $(VENV)
