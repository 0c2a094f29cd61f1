"""The spec document: its models, parameters, patterns' expansion into a plain graph."""
