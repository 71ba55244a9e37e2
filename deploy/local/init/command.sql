-- Command database: the schema the pipeline writes into (object: 'mission_sync.{stream_table}').
-- Sling creates the tables on the first run.
CREATE SCHEMA IF NOT EXISTS mission_sync AUTHORIZATION command;
