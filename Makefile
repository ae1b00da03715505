# The two commands of the README. Each creates .venv/ itself when it is missing or stale.
.PHONY: demo test setup bench addon clean-venv
setup:
	@bash scripts/setup.sh
demo: setup
	@.venv/bin/mrd demo $(ARGS)
test:
	@bash scripts/setup.sh --system-test-deps
	@.venv/bin/python -m pytest -q $(ARGS)
bench: setup
	@.venv/bin/mrd bench step
addon: setup
	@.venv/bin/python build_addon.py
clean-venv:
	rm -rf .venv
