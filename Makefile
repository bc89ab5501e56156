# jepalab: `make demo` runs the main job, `make test` runs the test suite. Both set up .venv from nothing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.jepalab-installed
DATASET_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test lint data browser slurm venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "jepalab needs Python >= 3.10")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# Keep a torch that is already there (a GPU user's CUDA build); otherwise the CPU build 2.13.0.
	$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Fashion-MNIST ships as a Debian package; install it where apt and root are available, otherwise say how.
data:
	@if [ -f $(DATASET_DIR)/train-images-idx3-ubyte.gz ] || [ -f $(DATASET_DIR)/train-images-idx3-ubyte ]; then \
		echo "Fashion-MNIST found in $(DATASET_DIR)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
		|| echo "warning: could not apt-get install dataset-fashion-mnist; image experiments will be skipped"; \
	else \
		echo "note: Fashion-MNIST is not installed. Install the Debian package 'dataset-fashion-mnist' (as root:"; \
		echo "      apt-get install dataset-fashion-mnist) or set JEPALAB_DATA_DIR to a folder holding"; \
		echo "      train-images-idx3-ubyte(.gz) etc.; image experiments are skipped until then."; \
	fi

# Chromium for the report's real-browser test: Debian's package where apt and root are available, otherwise say how.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo "Chromium found: $$(command -v chromium || command -v chromium-browser)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null && echo "installed Debian's chromium") \
		|| echo "warning: could not apt-get install chromium; the report's browser test will be skipped"; \
	else \
		echo "note: Chromium is not installed and this is not a root shell with apt. Install Debian's package"; \
		echo "      'chromium' (as root: apt-get install chromium); the report's browser test is skipped until then."; \
	fi

# Debian's SLURM daemons and munge for the cluster launcher's test (a one-node cluster it starts itself) where apt and
# root are available; otherwise say so: that test then runs the same jobs through submitit's local executor.
slurm:
	@if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then \
		echo "SLURM daemons found: $$(command -v slurmctld)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd munge >/dev/null \
			&& echo "installed Debian's slurmctld, slurmd and munge") \
		|| echo "warning: could not apt-get install slurmctld slurmd munge; the launcher test uses submitit's local executor"; \
	else \
		echo "note: SLURM's daemons are not installed and this is not a root shell with apt (as root: apt-get install"; \
		echo "      slurmctld slurmd munge); the launcher test runs its jobs through submitit's local executor until then."; \
	fi

demo: venv data
	$(VENV)/bin/jepalab demo

# Tests, then every benchmark script at tiny sizes (--smoke) so that none of them can rot.
test: venv browser slurm
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q
	@for script in benchmarks/*.py; do \
		echo "== $(PY) $$script --smoke"; \
		$(PY) $$script --smoke || exit 1; \
	done

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
