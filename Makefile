# Two commands on a fresh machine: `make run` (the workbench) and `make test` (the test suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 7860
ARGS ?=

.PHONY: run test install dev-install gpu-install bench clean-venv gguf-tools gguf-quantize

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# A stamp per requirements file: editing one re-runs the install, nothing else does.
$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

dev-install: $(VENV)/.dev-installed

gpu-install: $(VENV)/.installed
	$(PY) -m pip install -r requirements-gpu.txt
	touch $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) main.py --host $(HOST) --port $(PORT) $(ARGS)

# Without ARGS: the browser tests and the rest as two pytest processes at once (tests/run_suite.py);
# with ARGS: pytest -q ARGS.
test: $(VENV)/.dev-installed gguf-tools
	$(PY) -m tests.run_suite $(ARGS)

bench: $(VENV)/.dev-installed
	$(PY) -m bench.startup
	$(PY) -m bench.dataset_store

clean-venv:
	rm -rf $(VENV)

# ---- GGUF export without Unsloth (CPU or GPU, offline after this one-time step) ----
# llama.cpp's converter comes from the llama-cpp-python source distribution on PyPI, which vendors
# llama.cpp; only the converter (convert_*_to_gguf.py, conversion/, gguf-py/) is extracted, into a
# cache outside the repo that train/gguf.py reads (same variable, same default).
# `make gguf-quantize` also builds llama-quantize (q4_k_m) and llama-simple (greedy check) there.
LLAMA_CPP_PYTHON := 0.3.36
LLAMA_CPP_SHA256 := 832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
WORKBENCH_LLAMA_CPP ?= $(HOME)/.cache/workbench/llama.cpp
export WORKBENCH_LLAMA_CPP
GGUF_JOBS ?= 2
LLAMA_DIR := $(WORKBENCH_LLAMA_CPP)
LLAMA_SDIST := $(LLAMA_DIR)/sdist/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz
LLAMA_VENDOR := llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp
CONVERTER_PATHS := convert_hf_to_gguf.py convert_lora_to_gguf.py conversion gguf-py LICENSE
BUILD_PATHS := CMakeLists.txt LICENSE cmake ggml src include common tools vendor examples pocs licenses

gguf-tools: $(LLAMA_DIR)/.gguf-tools-$(LLAMA_CPP_PYTHON)

gguf-quantize: $(LLAMA_DIR)/.gguf-quantize-$(LLAMA_CPP_PYTHON)

# pip reuses its cache; the file is checked against the hash it was tried with before it is kept.
$(LLAMA_SDIST): | $(VENV)/.installed
	rm -rf $(@D)/.download && mkdir -p $(@D)/.download
	$(PY) -m pip download --no-deps --no-binary :all: --dest $(@D)/.download llama-cpp-python==$(LLAMA_CPP_PYTHON)
	$(PY) -c "import hashlib, sys; h = hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest(); sys.exit(0 if h == sys.argv[2] else 'sha256 mismatch: ' + h)" \
		$(@D)/.download/$(@F) $(LLAMA_CPP_SHA256)
	mv $(@D)/.download/$(@F) $@ && rmdir $(@D)/.download

$(LLAMA_DIR)/.gguf-tools-$(LLAMA_CPP_PYTHON): $(LLAMA_SDIST)
	rm -rf $(LLAMA_DIR)/.extract && mkdir -p $(LLAMA_DIR)/.extract
	tar -xzf $< -C $(LLAMA_DIR)/.extract --strip-components=3 $(addprefix $(LLAMA_VENDOR)/,$(CONVERTER_PATHS))
	cd $(LLAMA_DIR) && rm -rf $(CONVERTER_PATHS) .gguf-tools-* && mv $(addprefix .extract/,$(CONVERTER_PATHS)) . && rmdir .extract
	$(PY) $(LLAMA_DIR)/convert_hf_to_gguf.py --print-supported-models > $(LLAMA_DIR)/.check.log 2>&1 || (cat $(LLAMA_DIR)/.check.log; exit 1)
	touch $@

# Portable CPU flags: a native build (-march=native, AMX kernels) crashed with SIGILL on a machine
# of this project; the converter alone does not need any of this.
$(LLAMA_DIR)/.gguf-quantize-$(LLAMA_CPP_PYTHON): $(LLAMA_SDIST)
	rm -rf $(LLAMA_DIR)/source $(LLAMA_DIR)/build && mkdir -p $(LLAMA_DIR)/source
	tar -xzf $< -C $(LLAMA_DIR)/source --strip-components=3 $(addprefix $(LLAMA_VENDOR)/,$(BUILD_PATHS))
	cmake -S $(LLAMA_DIR)/source -B $(LLAMA_DIR)/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
		-DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
		-DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_CCACHE=OFF
	cmake --build $(LLAMA_DIR)/build --config Release -j $(GGUF_JOBS) --target llama-quantize llama-simple
	mkdir -p $(LLAMA_DIR)/bin && cp $(LLAMA_DIR)/build/bin/llama-quantize $(LLAMA_DIR)/build/bin/llama-simple $(LLAMA_DIR)/bin/
	rm -f $(LLAMA_DIR)/.gguf-quantize-* && touch $@
