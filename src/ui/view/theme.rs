//! Styles. With NO_COLOR (or `--no-color`) every colour is `Color::Reset` and only BOLD and REVERSED are used:
//! ratatui sends an empty colour code for other colours under NO_COLOR, which resets all attributes and would hide
//! the reverse-video selection.

use ratatui::style::{Color, Modifier, Style};

use crate::sync::event::Status;
use crate::sync::sling_log::Level;
use crate::ui::model::Shown;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    pub fn new(no_color: bool) -> Self {
        Self { color: !no_color }
    }

    fn fg(&self, c: Color) -> Style {
        Style::new().fg(if self.color { c } else { Color::Reset })
    }

    pub fn base(&self) -> Style {
        Style::new().fg(Color::Reset).bg(Color::Reset)
    }

    pub fn bold(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// The selected row: reverse video survives every terminal and NO_COLOR.
    pub fn selected(&self, focused: bool) -> Style {
        let s = Style::new().add_modifier(Modifier::REVERSED);
        if focused {
            s.add_modifier(Modifier::BOLD)
        } else {
            s
        }
    }

    pub fn title(&self, focused: bool) -> Style {
        if focused {
            self.bold().add_modifier(Modifier::REVERSED)
        } else {
            self.bold()
        }
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.bold()
        } else {
            self.fg(Color::DarkGray)
        }
    }

    pub fn status(&self, shown: Shown) -> Style {
        match shown {
            Shown::Done(Status::Failed) => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Shown::Done(Status::Success) => self.fg(Color::Green),
            Shown::Done(Status::Cancelled) => self.fg(Color::Magenta),
            Shown::Done(Status::Skipped) => self.fg(Color::Yellow),
            Shown::Retrying => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Shown::Running | Shown::Cancelling => self.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Shown::Busy => self.fg(Color::Yellow),
            Shown::Queued | Shown::Never => self.fg(Color::Reset),
        }
    }

    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Something to look at that is not a failure (drift reported in `report` mode).
    pub fn warning(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn level(&self, level: Level) -> Style {
        match level {
            Level::Error => self.error(),
            Level::Warn => self.fg(Color::Yellow),
            Level::Info => self.fg(Color::Reset),
            Level::Debug | Level::Trace => self.dim(),
        }
    }

    pub fn marker(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn color(&self, c: Color) -> Option<Style> {
        self.color.then(|| Style::new().fg(c))
    }
}
