# The two commands a newcomer needs; both set up .venv themselves on first use.
.PHONY: run test
run:
	@./tools/run.sh

test:
	@./tools/test.sh
