# The two commands of the README, and the maintainers' `make docs` and `make leaderboards`.
# Each creates .venv on first use and installs biobench with its plugins; nothing else needs to
# be installed by hand.  `make demo` writes into an ignored folder (DEMO_OUTPUT); only
# `make leaderboards` rewrites the committed boards in leaderboards/.
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
# make demo's output: ignored by git, so the demo never changes a tracked file.
DEMO_OUTPUT ?= demo-output
# How the grids run: on 2 cores, two single-threaded processes train these small models 1.4x
# faster than one process with 2 threads (benchmarks/README.md). The thread count is recorded
# (it changes the last digits), and the committed boards are made the same way, so that the demo
# reproduces them on the same processor.
RUN_FLAGS ?= --jobs 2 --threads 1
# Score files above this size (MB) are not written for the committed boards: synthfaces' and
# quick-pretrain's identification score matrices (3-14 MB a run). Each record names them under
# artifacts.scores_not_kept and keeps the matrices' per-probe ranks (<kind>.ranks), from which
# biobench verify recomputes the top-k accuracies and the claims read per-probe outcomes.
SCORE_FILE_MB ?= 1
# The committed boards, and the protocols whose records they hold.
LEADERBOARDS ?= leaderboards
LEADERBOARD_PROTOCOLS ?= demo quick quick-pretrain synthfaces orl
# Protocols whose committed records are made with the AVX2 kernels (--cpu-math avx2): demo, whose
# time and spread are promised for a processor without AVX-512 (protocols/demo.toml).
AVX2_PROTOCOLS ?= demo
# FRESH=1: remove those protocols' records first, so that every seed is made at this commit.
FRESH ?=
# Scripts adding rows that no protocol grid can (orl's case1-none.onnx): run with FRESH=1, which
# removes their records too.
LEADERBOARD_SCRIPTS ?= docs/orl_onnx_row.py

.PHONY: demo test lint clean-venv leaderboards docs screenshot

$(STAMP): Makefile pyproject.toml $(addsuffix /pyproject.toml,$(LOCAL_PLUGINS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	for p in $(LOCAL_PLUGINS); do $(BIN)/python -m pip install --quiet -e "$$p" || exit 1; done
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/biobench run --protocol demo $(RUN_FLAGS) --output $(DEMO_OUTPUT)
	@echo
	@echo "Leaderboard: $(DEMO_OUTPUT)/demo.md and $(DEMO_OUTPUT)/demo.csv (not tracked by git)"
	@echo "Run records: $(DEMO_OUTPUT)/runs/demo/"
	@echo "The committed boards in $(LEADERBOARDS)/ are unchanged (make leaderboards rebuilds them)."

# Regenerate every committed board at one commit from a clean tree: refuse uncommitted changes,
# run each protocol's missing seeds (all of them with FRESH=1), rebuild the boards with --strict
# (a row whose seeds mix commits or come from a dirty tree is refused, naming the row), then
# regenerate README.md's results section from the claims CSVs and the generated docs (run times).
leaderboards: $(STAMP)
	@git diff --quiet HEAD -- || { echo "make leaderboards: uncommitted changes in the working tree; commit or stash them first, so that every record names one clean commit" >&2; exit 1; }
	@if [ -n "$(FRESH)" ]; then for p in $(LEADERBOARD_PROTOCOLS); do rm -rf "$(LEADERBOARDS)/runs/$$p"; done; fi
	for p in $(LEADERBOARD_PROTOCOLS); do math=native; case " $(AVX2_PROTOCOLS) " in *" $$p "*) math=avx2;; esac; BIOBENCH_MAX_SCORE_FILE_MB=$(SCORE_FILE_MB) $(BIN)/biobench run --protocol $$p --cpu-math $$math $(RUN_FLAGS) --output $(LEADERBOARDS) --resume --no-progress || exit 1; done
	@if [ -n "$(FRESH)" ]; then for s in $(LEADERBOARD_SCRIPTS); do $(BIN)/python $$s --output $(LEADERBOARDS) || exit 1; done; fi
	$(BIN)/biobench leaderboard build --output $(LEADERBOARDS) --strict
	$(BIN)/python -m biobench.leaderboard.readme --output $(LEADERBOARDS) --write README.md
	$(BIN)/python -m biobench.docsgen

# Regenerate the generated documentation: docs/protocol-reference.md (from biobench/schema.py),
# docs/cli.md (from the click commands), the example plugin's files in docs/plugins.md, the run
# times quoted in README.md and docs/protocols.md (from the committed run records), and
# README.md's results section (from the claims CSVs). The tests fail when any of them is stale.
docs: $(STAMP)
	$(BIN)/python -m biobench.docsgen
	$(BIN)/python -m biobench.leaderboard.readme --output $(LEADERBOARDS) --write README.md

# The README's picture of the website (docs/leaderboard-site.png), taken in headless Chromium of
# the site built from the committed boards in a temporary folder; its .json sidecar records what
# was shot, and a test fails when the boards, templates or styles no longer match it.
screenshot: $(STAMP)
	$(BIN)/python -m biobench.site.screenshot --leaderboards $(LEADERBOARDS) --output docs/leaderboard-site.png

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean-venv:
	rm -rf $(VENV)
