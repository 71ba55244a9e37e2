//! The one list of keys. Key handling, the hint bar and the `?` help overlay all read `KEYS`, so what the screen
//! says is what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::model::{Model, Overlay};

/// What a key asks for; `input::update` decides what it means in the current pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    First,
    Last,
    PageUp,
    PageDown,
    NextPane,
    PrevPane,
    Filter,
    Run,
    Noop,
    Backfill,
    RunAll,
    Cancel,
    ToggleLog,
    Help,
    History,
    Rescan,
    Quit,
    /// Close the help overlay.
    Close,
    /// Dialog: yes (`y` only).
    Yes,
    /// Dialog: no (`n`, Esc).
    No,
    /// Dialog: move between the No and Yes buttons.
    Toggle,
    /// Dialog: press the highlighted button (No unless moved).
    Press,
    FilterChar(char),
    FilterBackspace,
    FilterDone,
    FilterClear,
}

/// Where a binding applies; the first scope that is open gets the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Main,
    Dialog,
    Help,
    Filter,
    History,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Main => "Pipelines and panes",
            Scope::Dialog => "Confirmation dialogs",
            Scope::Help => "This help",
            Scope::Filter => "Filter prompt (/)",
            Scope::History => "Run history (h)",
        }
    }
}

/// A key: a code plus whether Ctrl is held. Shift is implied by the character (`G`) or the code (BackTab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn ch(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const CTRL_C: Key = Key {
    code: KeyCode::Char('c'),
    ctrl: true,
};

impl Key {
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        ev.code == self.code
            && ev.modifiers.contains(KeyModifiers::CONTROL) == self.ctrl
            && !ev.modifiers.contains(KeyModifiers::ALT)
    }
}

pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [Key],
    /// How the keys are written in the help and the hint bar.
    pub label: &'static str,
    /// The help line; empty hides a binding that repeats one shown elsewhere.
    pub help: &'static str,
    /// A one-word hint for the bottom bar, for the bindings worth a place there.
    pub hint: Option<&'static str>,
    pub action: Action,
}

const fn bind(
    scope: Scope,
    keys: &'static [Key],
    label: &'static str,
    help: &'static str,
    hint: Option<&'static str>,
    action: Action,
) -> Binding {
    Binding {
        scope,
        keys,
        label,
        help,
        hint,
        action,
    }
}

use Action as A;
use Scope::{Dialog, Filter, Help, History, Main};

/// Every key of the console, in the order the help shows them.
#[rustfmt::skip]
pub const KEYS: &[Binding] = &[
    bind(Main, &[ch('r'), code(KeyCode::Enter)], "r Enter", "run the selected pipeline (incremental)", Some("run"), A::Run),
    bind(Main, &[ch('n')], "n", "noop: validate the selected pipeline, write nothing", Some("noop"), A::Noop),
    bind(Main, &[ch('b')], "b", "backfill: the target is fully reloaded (asks first)", Some("backfill"), A::Backfill),
    bind(Main, &[ch('a')], "a", "run all pipelines the filter shows (asks if more than one)", Some("all"), A::RunAll),
    bind(Main, &[ch('c')], "c", "cancel the selected run (asks first)", Some("cancel"), A::Cancel),
    bind(Main, &[ch('h')], "h", "history of the selected pipeline, from the journal", Some("history"), A::History),
    bind(Main, &[ch('j'), code(KeyCode::Down)], "j ↓", "next pipeline / scroll down", None, A::Down),
    bind(Main, &[ch('k'), code(KeyCode::Up)], "k ↑", "previous pipeline / scroll up", None, A::Up),
    bind(Main, &[ch('g'), code(KeyCode::Home)], "g Home", "first pipeline / top of the log", None, A::First),
    bind(Main, &[ch('G'), code(KeyCode::End)], "G End", "last pipeline / follow the log tail", None, A::Last),
    bind(Main, &[code(KeyCode::PageUp)], "PgUp", "page up", None, A::PageUp),
    bind(Main, &[code(KeyCode::PageDown)], "PgDn", "page down", None, A::PageDown),
    bind(Main, &[code(KeyCode::Tab)], "Tab", "next pane (pipelines, detail, log)", None, A::NextPane),
    bind(Main, &[code(KeyCode::BackTab)], "S-Tab", "previous pane", None, A::PrevPane),
    bind(Main, &[ch('/')], "/", "filter pipelines by name", Some("filter"), A::Filter),
    bind(Main, &[ch('e')], "e", "log pane: Sling output / wrapper log", None, A::ToggleLog),
    bind(Main, &[ch('u'), code(KeyCode::F(5))], "u F5", "read the pipeline files again (added and removed files)", None, A::Rescan),
    bind(Main, &[ch('?')], "?", "this help", Some("help"), A::Help),
    bind(Main, &[ch('q'), CTRL_C], "q ^C", "quit (asks first when runs are active; cancels them)", Some("quit"), A::Quit),
    bind(Dialog, &[ch('y'), ch('Y')], "y", "yes: do it", Some("yes"), A::Yes),
    bind(Dialog, &[ch('n'), ch('N'), code(KeyCode::Esc)], "n Esc", "no: back out, nothing happens", Some("no"), A::No),
    bind(Dialog, &[code(KeyCode::Left), code(KeyCode::Right), ch('h'), ch('l'), code(KeyCode::Tab)], "← →", "move between No and Yes", Some("choose"), A::Toggle),
    bind(Dialog, &[code(KeyCode::Enter)], "Enter", "press the highlighted button (No by default)", Some("press"), A::Press),
    bind(Dialog, &[CTRL_C], "^C", "in the quit dialog: quit now (runs are still stopped cleanly)", None, A::Quit),
    bind(Filter, &[code(KeyCode::Enter)], "Enter", "keep the filter and leave the prompt", Some("keep"), A::FilterDone),
    bind(Filter, &[code(KeyCode::Esc)], "Esc", "clear the filter and leave the prompt", Some("clear"), A::FilterClear),
    bind(Filter, &[code(KeyCode::Backspace)], "Bksp", "delete the last character", None, A::FilterBackspace),
    bind(Filter, &[code(KeyCode::Down)], "", "", None, A::Down),
    bind(Filter, &[code(KeyCode::Up)], "", "", None, A::Up),
    bind(Filter, &[CTRL_C], "", "", None, A::Quit),
    bind(Help, &[code(KeyCode::Esc), ch('?'), ch('q')], "Esc ? q", "close this help", Some("close"), A::Close),
    bind(Help, &[ch('j'), code(KeyCode::Down)], "j k ↑ ↓", "scroll the help", Some("scroll"), A::Down),
    bind(Help, &[ch('k'), code(KeyCode::Up)], "", "", None, A::Up),
    bind(Help, &[code(KeyCode::PageDown), ch(' ')], "PgDn PgUp", "page down / up", Some("page"), A::PageDown),
    bind(Help, &[code(KeyCode::PageUp)], "", "", None, A::PageUp),
    bind(Help, &[ch('g'), code(KeyCode::Home)], "g G", "top / bottom", None, A::First),
    bind(Help, &[ch('G'), code(KeyCode::End)], "", "", None, A::Last),
    bind(Help, &[CTRL_C], "", "", None, A::Quit),
    bind(History, &[code(KeyCode::Esc), ch('h'), ch('q')], "Esc h q", "close the history", Some("close"), A::Close),
    bind(History, &[ch('j'), code(KeyCode::Down)], "j k ↑ ↓", "older / newer run", Some("move"), A::Down),
    bind(History, &[ch('k'), code(KeyCode::Up)], "", "", None, A::Up),
    bind(History, &[code(KeyCode::PageDown)], "PgDn PgUp", "page down / up", Some("page"), A::PageDown),
    bind(History, &[code(KeyCode::PageUp)], "", "", None, A::PageUp),
    bind(History, &[ch('g'), code(KeyCode::Home)], "g G", "newest / oldest run", None, A::First),
    bind(History, &[ch('G'), code(KeyCode::End)], "", "", None, A::Last),
    bind(History, &[CTRL_C], "", "", None, A::Quit),
];

/// Maps a key in a scope to its action. Only key presses count (not repeats or releases reported by some terminals).
pub fn lookup(scope: Scope, ev: &KeyEvent) -> Option<Action> {
    if ev.kind != KeyEventKind::Press {
        return None;
    }
    let bound = KEYS
        .iter()
        .filter(|b| b.scope == scope)
        .find(|b| b.keys.iter().any(|k| k.matches(ev)))
        .map(|b| b.action);
    match (bound, scope, ev.code) {
        (None, Scope::Filter, KeyCode::Char(c))
            if !ev
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(Action::FilterChar(c))
        }
        (b, _, _) => b,
    }
}

/// The hint bar's entries for a scope: `(keys, word)`.
pub fn hints(scope: Scope) -> impl Iterator<Item = (&'static str, &'static str)> {
    KEYS.iter()
        .filter(move |b| b.scope == scope)
        .filter_map(|b| b.hint.map(|h| (b.label, h)))
}

/// The scopes in the order the help shows them.
pub const HELP_ORDER: [Scope; 5] = [
    Scope::Main,
    Scope::History,
    Scope::Dialog,
    Scope::Filter,
    Scope::Help,
];

/// Rows of the help text: per scope a title and its entries, a blank row between scopes.
pub fn help_rows() -> usize {
    HELP_ORDER
        .iter()
        .map(|&s| 1 + help(s).count())
        .sum::<usize>()
        + HELP_ORDER.len().saturating_sub(1)
}

/// The help overlay's entries for a scope: `(keys, what it does)`.
pub fn help(scope: Scope) -> impl Iterator<Item = (&'static str, &'static str)> {
    KEYS.iter()
        .filter(move |b| b.scope == scope && !b.help.is_empty())
        .map(|b| (b.label, b.help))
}

/// Which part of the key list is live.
pub fn scope(model: &Model) -> Scope {
    match &model.overlay {
        Some(Overlay::Confirm { .. }) => Scope::Dialog,
        Some(Overlay::Help { .. }) => Scope::Help,
        Some(Overlay::History { .. }) => Scope::History,
        None if model.filter_editing => Scope::Filter,
        None => Scope::Main,
    }
}
