"""Property-based fuzzing of snngen's public entry points (issue 18).

``strategies`` generates valid and malformed inputs (equation text, values, shapes, damaged
files); ``harness`` runs one call and classifies its outcome: success, an ``SnngenError``, or
a failure of the property (any other exception, a valid input rejected, a hang).
"""
