"""Full training of an exported architecture (the Hydra app lives in ``trainers.train``)."""
