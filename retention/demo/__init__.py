"""A demo hospital database: a Mediboard-like schema, a data generator, an embedded server."""
