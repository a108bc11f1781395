# hpps_d2 -- see README.md. Everything installs into the active Python environment.
PYTHON ?= python3
PIP = $(PYTHON) -m pip --disable-pip-version-check
# Installed only when no torch is present; an existing torch is kept as it is.
TORCH_VERSION ?= 2.14.1
TORCHVISION_VERSION ?= 0.29.1
DEMO_OUT ?= demo_output

.PHONY: install test demo

install:
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		echo "torch $$($(PYTHON) -c 'import torch; print(torch.__version__)') is installed; kept."; \
	else \
		$(PIP) install torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION); \
	fi
	@$(PYTHON) -c "import torchvision" 2>/dev/null || { \
		echo "torch is installed but torchvision is not: install the torchvision release that matches your torch."; \
		exit 1; }
	$(PYTHON) tools/install_detectron2.py
	$(PIP) install -e .
	$(PYTHON) -c "import hpps_d2, detectron2; print('hpps_d2', hpps_d2.__version__, 'on detectron2', detectron2.__version__)"

test: install
	$(PYTHON) -m pytest tests -q

# The main job on the synthetic world (no dataset, no GPU needed): write the world, check that
# every split loads with the counts the generator wrote, draw records and unified inputs, then
# ImageNet stand-in -> hybrid pre-train -> fine-tune NAE on synthetic PRW from the stand-in and from the
# pre-trained model -> table.
demo: install
	$(PYTHON) tools/make_synth_data.py --out datasets/synth
	$(PYTHON) tools/check_datasets.py --prefix synth_ --expected datasets/synth/manifest.json
	$(PYTHON) tools/visualize_data.py --dataset synth_prw_train --num 2 --out $(DEMO_OUT)/data
	$(PYTHON) tools/visualize_data.py --dataset synth_msmt17_train --num 2 --unified --out $(DEMO_OUT)/data
	$(PYTHON) tools/visualize_data.py --dataset synth_crowdhuman_train --num 2 --unified --out $(DEMO_OUT)/data
	$(PYTHON) tools/demo.py --out $(DEMO_OUT)/runs
