"""Example samplers for ``spinicl bench --suite --sampler MODULE:FACTORY`` (README:
"Benchmark your own sampler"); ``spinicl.examples.rwm:make_sampler`` is the README's."""
