-- Mission database demo schema (docker-entrypoint-initdb.d: runs once, on an empty volume).
-- Every replicated table has a unique key and an `updated_at` that changes on every write: the
-- pipeline deploy/base/pipelines/mission-to-command.yaml syncs incrementally on them.

CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TABLE public.demo_events (
  id          bigint      PRIMARY KEY,
  kind        text        NOT NULL,
  payload     jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX demo_events_updated_at ON public.demo_events (updated_at);
CREATE TRIGGER demo_events_touch BEFORE UPDATE ON public.demo_events
  FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE public.demo_assets (
  asset_id    bigint      PRIMARY KEY,
  name        text        NOT NULL,
  status      text        NOT NULL DEFAULT 'active',
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX demo_assets_updated_at ON public.demo_assets (updated_at);
CREATE TRIGGER demo_assets_touch BEFORE UPDATE ON public.demo_assets
  FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

INSERT INTO public.demo_events (id, kind, payload, created_at, updated_at)
SELECT g,
       (ARRAY['position', 'status', 'alert'])[1 + g % 3],
       jsonb_build_object('seq', g, 'value', round((random() * 100)::numeric, 2)),
       now() - (10000 - g) * interval '1 second',
       now() - (10000 - g) * interval '1 second'
FROM generate_series(1, 10000) AS g;

INSERT INTO public.demo_assets (asset_id, name, updated_at)
SELECT g, 'asset-' || g, now() - (100 - g) * interval '1 minute'
FROM generate_series(1, 100) AS g;

-- To see incremental runs pick up changes between jobs:
--   UPDATE public.demo_events SET kind = 'status' WHERE id % 100 = 0;
--   INSERT INTO public.demo_events (id, kind) SELECT g, 'alert' FROM generate_series(10001, 10100) g;
