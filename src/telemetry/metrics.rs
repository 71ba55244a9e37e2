//! What the engine's metric events become: tracing-opentelemetry's `MetricsLayer` creates the instruments by name
//! but cannot give them a unit or bucket boundaries, so an SDK View adds both from `sync::metrics::SPECS`.

use opentelemetry_sdk::metrics::{Aggregation, Instrument, Stream};

use crate::sync::metrics::{self, Kind};

/// The View for every instrument the engine emits; other instruments keep the SDK defaults.
pub fn view(instrument: &Instrument) -> Option<Stream> {
    let spec = metrics::spec(instrument.name())?;
    let mut stream = Stream::builder()
        .with_unit(spec.unit)
        .with_description(spec.description);
    if spec.kind == Kind::Histogram {
        stream = stream.with_aggregation(Aggregation::ExplicitBucketHistogram {
            boundaries: metrics::DURATION_BOUNDARIES.to_vec(),
            record_min_max: true,
        });
    }
    // Cannot fail for the fixed specs (ASCII units, increasing boundaries; unit-tested in sync::metrics).
    stream.build().ok()
}
