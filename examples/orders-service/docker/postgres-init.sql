-- Runs once, when the postgres container initialises its data directory: Unleash gets a database of its own
-- beside the service's "orders" database (POSTGRES_DB).
CREATE DATABASE unleash;
