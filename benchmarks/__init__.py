"""airspeed velocity (asv) benchmarks for fastnet; see asv.conf.json and README, "Performance"."""
