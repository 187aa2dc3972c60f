# bioinfra: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: help setup demo demo-cellprofiler cellprofiler test unit integration docker-up images bench bench-samples bench-fanout bench-aws bench-inputs bench-scale lint checkov conformance clean e2e-aws e2e-gcp

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## install the tools (apt) and bioinfra (.venv); skips what is there
	@scripts/setup.sh

demo: setup ## run fastqc-to-bwa on the bundled sample, on this machine
	$(BIN)/bioinfra run fastqc-to-bwa

demo-cellprofiler: setup cellprofiler ## run the cellprofiler screen (illum, batches, gather) on the bundled synthetic plates
	$(BIN)/bioinfra run cellprofiler

cellprofiler: ## headless CellProfiler for the native runtime, in .venv-cellprofiler (once, about a minute)
	@scripts/cellprofiler-venv.sh >/dev/null

test: setup cellprofiler lint ## lint, then every test (unit + real tools, real CellProfiler)
	$(BIN)/python -m pytest

unit: setup ## unit tests only (no bioinformatics tools needed)
	$(BIN)/python -m pytest tests/unit

integration: setup ## integration tests only (real FastQC, bwa, samtools, MultiQC)
	$(BIN)/python -m pytest -m integration tests/integration

e2e-aws: setup ## on a real AWS account: up, run, logs, destroy, sweep finds nothing (costs money; needs BIOINFRA_E2E_AWS=1: docs/testing.md)
	$(BIN)/python -m pytest -s -m e2e "tests/e2e/test_real_account.py::test_up_run_logs_destroy_leaves_nothing[aws]"

e2e-gcp: setup ## the same on a real GCP project (needs BIOINFRA_E2E_GCP=1, BIOINFRA_E2E_GCP_PROJECT: docs/testing.md)
	$(BIN)/python -m pytest -s -m e2e "tests/e2e/test_real_account.py::test_up_run_logs_destroy_leaves_nothing[gcp]"

docker-up: ## as root: install/start Docker and build the local base image (for images and tests)
	@scripts/docker-up.sh

images: setup docker-up ## build the tool images on the local base image (bwa where bwa-mem2 cannot be fetched)
	$(BIN)/bioinfra images build --base-image bioinfra-base:bookworm --aligner $${ALIGNER:-bwa}

bench: setup ## bioinfra vs the same commands as a serial script; writes bench/results.md
	$(BIN)/python bench/run_bench.py

bench-samples: setup ## only the many-samples part (render size/time vs sheet size, packing of 8 samples); updates bench/results.md
	$(BIN)/python bench/samples_bench.py

bench-fanout: setup ## only the executor's cost per fan-out child vs the fan-out's size; updates bench/results.md
	$(BIN)/python bench/fanout_bench.py

bench-inputs: setup ## only the pre-run cost of input checks vs input size (10^5..10^7 read pairs); updates bench/results.md
	$(BIN)/python bench/input_checks_bench.py

bench-scale: setup ## fastqc-to-bwa at real size (5 Mb genome, 2x10^6 pairs, an 8-sample cohort) vs serial and align alone, input checks at 10^5..10^7 pairs, estimate calibration (~25 min, not in make test); updates bench/results.md
	$(BIN)/python bench/scale_bench.py

bench-aws: setup ## only the AWS part of the bench (plan/up/destroy against moto); updates bench/results.md
	$(BIN)/python bench/aws_bench.py

conformance: setup ## run Argo's own examples and e2e Workflows through the local executor; writes docs/argo-conformance.md
	$(BIN)/python scripts/conformance.py

checkov: setup ## checkov on the rendered AWS stacks (installs checkov into .venv-checkov once)
	@scripts/checkov.sh

lint: setup ## ruff, and the committed Argo schema is current
	$(BIN)/ruff check bioinfra tests scripts bench templates
	$(BIN)/python scripts/generate_argo_schema.py --check

clean: ## remove the venv, caches and results/ (not ~/.cache/bioinfra)
	rm -rf $(VENV) .venv-checkov .venv-cellprofiler results .pytest_cache .ruff_cache bench/work
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
