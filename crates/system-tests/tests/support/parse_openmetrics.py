"""Parses OpenMetrics text from stdin with the Prometheus project's reference parser and
prints its samples as JSON. Exits non-zero (with the parser's message) on invalid input."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        exemplar = sample.exemplar
        samples.append(
            {
                "family": family.name,
                "type": family.type,
                "name": sample.name,
                "labels": sample.labels,
                "value": sample.value,
                "exemplar": {"labels": exemplar.labels, "value": exemplar.value} if exemplar else None,
            }
        )
json.dump(samples, sys.stdout)
