"""bench/run's phases, one mixin of Bench each, by what they measure."""
