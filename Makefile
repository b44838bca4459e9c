# Every command in the README is one line here.
.PHONY: demo demo-down test services-up services-down lint bench

demo:           ## bring up the whole regional demo (installs what is missing)
	scripts/demo

demo-down:      ## stop the demo and the services it started
	scripts/demo down

test:           ## every check: ruff, mypy, import contracts, Django checks, pytest on real services
	scripts/check

services-up:
	scripts/services up

services-down:
	scripts/services down

bench:          ## run the benchmarks and print their figures
	scripts/bench
