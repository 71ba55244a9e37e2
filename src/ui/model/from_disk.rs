//! What the console read from disk, put into the model: the journal (history view, a run lock freed) and the
//! pipeline files read again. The console does the reading, so the model stays free of I/O.

use super::{Model, Overlay, PipelineInfo, PipelineView};
use crate::sync::event::{Mode, PipelineReport};
use crate::ui::logbuf::LogEntry;

/// The lock that refused a run is free again: the row goes back to what the journal now says (the other holder
/// may have recorded a run). `runs` is the pipeline's journal, newest first.
pub fn lock_released(model: &mut Model, pipeline: &str, runs: &[PipelineReport]) {
    let Some(p) = model.pipeline_mut(pipeline) else {
        return;
    };
    if p.locked.take().is_none() {
        return;
    }
    let newest = |noop: bool| {
        runs.iter()
            .find(|r| (r.mode == Mode::Noop) == noop)
            .cloned()
    };
    if let Some(r) = newest(false) {
        if p.last
            .as_ref()
            .is_none_or(|old| r.finished_at > old.finished_at)
        {
            p.last = Some(r);
        }
    }
    if let Some(r) = newest(true) {
        if p.last_noop
            .as_ref()
            .is_none_or(|old| r.finished_at > old.finished_at)
        {
            p.last_noop = Some(r);
        }
    }
    p.log
        .push(LogEntry::marker("── the run lock is free again ──"));
}

/// The pipeline files as read again: new ones appear, removed ones go (unless still queued or running: they stay
/// until they finish), the others keep their state and log. The selection stays on the same pipeline.
pub fn set_pipelines(model: &mut Model, infos: Vec<PipelineInfo>) {
    let previous = model.selected_pipeline().map(|p| p.info.name.clone());
    let mut old: Vec<PipelineView> = std::mem::take(&mut model.pipelines);
    let before = old.len();
    let mut added = 0;
    let mut views: Vec<PipelineView> = Vec::with_capacity(infos.len());
    for info in infos {
        match old.iter().position(|p| p.info.name == info.name) {
            Some(i) => {
                let mut v = old.swap_remove(i);
                v.info = info;
                views.push(v);
            }
            None => {
                added += 1;
                views.push(PipelineView::idle(info));
            }
        }
    }
    let busy: Vec<PipelineView> = old.into_iter().filter(|p| p.is_active()).collect();
    let gone = before + added - views.len() - busy.len();
    views.extend(busy);
    views.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    model.pipelines = views;
    let index = previous.and_then(|n| model.pipelines.iter().position(|p| p.info.name == n));
    model.reselect(index);
    model.say(format!(
        "pipeline files read again: {} pipeline(s), {added} new, {gone} gone",
        model.pipelines.len()
    ));
}

/// Opens the history view with what the console read from the journal (newest first).
pub fn show_history(model: &mut Model, pipeline: String, runs: Vec<PipelineReport>) {
    model.overlay = Some(Overlay::History {
        pipeline,
        runs,
        selected: 0,
    });
}
