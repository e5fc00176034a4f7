"""A demo hospital database: a Mediboard-like schema, a realistic data generator, an embedded server."""
