//! A guest's boot-time settings in `guest.toml`: `autostart` (started by
//! `vbuild start --autostart` at host boot) and its restart policy; and
//! which guests are marked, in name order.

use crate::config::GuestConfig;
use crate::error::RuntimeError;
use crate::name::GuestName;
use crate::paths::Layout;
use crate::restart::RestartPolicy;
use crate::store::GuestStore;

/// Changes guest `name`'s config with `change` and saves it (atomically);
/// returns the config as saved and whether anything changed.
fn update(
    layout: &Layout,
    name: &GuestName,
    change: impl FnOnce(&mut GuestConfig),
) -> Result<(GuestConfig, bool), RuntimeError> {
    let n = name.as_str();
    let mut cfg = GuestStore::new(layout).load(n)?;
    let before = cfg.clone();
    change(&mut cfg);
    if cfg != before {
        cfg.save(&layout.guest_config(n))?;
    }
    let changed = cfg != before;
    Ok((cfg, changed))
}

/// Marks guest `name` to be started at host boot (`on`) or not; true
/// when that changed it.
pub fn set_autostart(layout: &Layout, name: &GuestName, on: bool) -> Result<bool, RuntimeError> {
    Ok(update(layout, name, |c| c.autostart = on)?.1)
}

/// Sets guest `name`'s restart policy; true when that changed it. It
/// applies from the next time init ends (the supervisor reads it then).
pub fn set_restart(
    layout: &Layout,
    name: &GuestName,
    policy: RestartPolicy,
) -> Result<bool, RuntimeError> {
    Ok(update(layout, name, |c| c.restart = policy)?.1)
}

/// The guests marked for autostart, in name order (a guest whose config
/// cannot be read is not one).
pub fn marked(layout: &Layout) -> Result<Vec<String>, RuntimeError> {
    Ok(GuestStore::new(layout)
        .list()?
        .into_iter()
        .filter(|(_, cfg)| cfg.as_ref().is_ok_and(|c| c.autostart))
        .map(|(n, _)| n)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(l: &Layout, n: &str) {
        std::fs::create_dir_all(l.guest_dir(n)).unwrap();
        std::fs::write(
            l.guest_config(n),
            format!("name = \"{n}\"\ndistro = \"debian\"\nrelease = \"bookworm\"\n"),
        )
        .unwrap();
    }

    #[test]
    fn marks_are_saved_listed_in_name_order_and_unknown_guests_refused() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        for n in ["web", "db", "mail"] {
            guest(&l, n);
        }
        let g = |n| GuestName::parse(n).unwrap();
        assert!(marked(&l).unwrap().is_empty());
        assert!(set_autostart(&l, &g("web"), true).unwrap());
        assert!(set_autostart(&l, &g("db"), true).unwrap());
        assert!(!set_autostart(&l, &g("db"), true).unwrap(), "no change");
        assert_eq!(marked(&l).unwrap(), ["db", "web"]);
        assert!(set_autostart(&l, &g("web"), false).unwrap());
        assert_eq!(marked(&l).unwrap(), ["db"]);
        let cfg = GuestConfig::load(&l.guest_config("db")).unwrap();
        assert!(cfg.autostart);
        assert!(set_restart(&l, &g("db"), RestartPolicy::Always).unwrap());
        let cfg = GuestConfig::load(&l.guest_config("db")).unwrap();
        assert_eq!((cfg.autostart, cfg.restart), (true, RestartPolicy::Always));
        let e = set_autostart(&l, &g("nosuch"), true).unwrap_err();
        assert!(matches!(e, RuntimeError::NotFound(_)), "{e}");
        assert!(!l.guest_dir("nosuch").exists());
    }
}
