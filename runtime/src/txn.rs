//! All-or-nothing changes of a guest (`vbuild set`, `vbuild limit`, start):
//! every step that succeeded registers how to undo itself; when a later
//! step fails, the undos run in reverse order and the error says either
//! that nothing was changed or exactly what could not be put back.

use crate::error::RuntimeError;

type UndoFn<'a> = Box<dyn FnOnce() -> Result<(), String> + 'a>;

/// The undo log of one change of guest `name`.
pub struct Txn<'a> {
    name: String,
    undo: Vec<(String, UndoFn<'a>)>,
}

impl<'a> Txn<'a> {
    /// A change of guest `name`.
    pub fn new(name: &str) -> Txn<'a> {
        Txn {
            name: name.to_string(),
            undo: Vec::new(),
        }
    }

    /// Records how to undo the step `what` that just succeeded.
    pub fn on_undo(&mut self, what: &str, f: impl FnOnce() -> Result<(), String> + 'a) {
        self.undo.push((what.to_string(), Box::new(f)));
    }

    /// Runs `step`; on failure rolls everything back (newest first) and
    /// returns the error that says how that went.
    pub fn step<T, E: std::fmt::Display>(
        &mut self,
        what: &str,
        step: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, RuntimeError> {
        match step() {
            Ok(v) => Ok(v),
            Err(e) => Err(self.fail(what, e.to_string())),
        }
    }

    /// Rolls back after `what` failed with `cause`.
    pub fn fail(&mut self, what: &str, cause: String) -> RuntimeError {
        let mut left = Vec::new();
        while let Some((undo_what, f)) = self.undo.pop() {
            if let Err(e) = f() {
                left.push(format!("{undo_what} ({e})"));
            }
        }
        if left.is_empty() {
            RuntimeError::Unchanged {
                name: self.name.clone(),
                step: what.to_string(),
                cause,
            }
        } else {
            RuntimeError::PartlyChanged {
                name: self.name.clone(),
                step: what.to_string(),
                cause,
                left: left.join("; "),
            }
        }
    }

    /// The change is complete: nothing is undone.
    pub fn commit(mut self) {
        self.undo.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn a_failed_step_undoes_the_earlier_ones_newest_first() {
        let log = RefCell::new(Vec::new());
        let push = |what: &'static str| {
            log.borrow_mut().push(what);
            Ok::<(), String>(())
        };
        let mut t = Txn::new("g");
        t.step("one", || push("do one")).unwrap();
        t.on_undo("one", || push("undo one"));
        t.step("two", || push("do two")).unwrap();
        t.on_undo("two", || push("undo two"));
        let e = t.step("three", || Err::<(), _>("disk full")).unwrap_err();
        assert_eq!(*log.borrow(), ["do one", "do two", "undo two", "undo one"]);
        let text = e.to_string();
        assert!(
            text.contains("three") && text.contains("disk full"),
            "{text}"
        );
        assert!(text.contains("nothing was changed"), "{text}");
    }

    #[test]
    fn an_undo_that_fails_is_named_and_nothing_is_claimed() {
        let mut t = Txn::new("g");
        t.on_undo("restore the file", || Err("read-only".into()));
        let e = t.fail("save", "EIO".into()).to_string();
        assert!(!e.contains("nothing was changed"), "{e}");
        assert!(e.contains("restore the file (read-only)"), "{e}");
    }
}
