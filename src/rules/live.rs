//! The rules a running server uses: loaded at start and replaced whole on `SIGHUP` (docs/interceptor.md "Rules
//! files"). A request takes one snapshot and uses it throughout, so it never sees half of a reload; a reload
//! that fails to parse keeps the rules in force and says why.

use super::{InvalidRules, Rules};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub struct LiveRules {
    dir: Option<PathBuf>,
    current: RwLock<Arc<Rules>>,
}

impl LiveRules {
    /// Loads `dir` (no directory: no rules).
    pub fn load(dir: Option<PathBuf>) -> Result<LiveRules, InvalidRules> {
        let rules = match &dir {
            Some(dir) => Rules::load_dir(dir)?,
            None => Rules::default(),
        };
        Ok(LiveRules {
            dir,
            current: RwLock::new(Arc::new(rules)),
        })
    }

    /// Fixed rules that never reload (tests, the offline CLI).
    pub fn fixed(rules: Rules) -> LiveRules {
        LiveRules {
            dir: None,
            current: RwLock::new(Arc::new(rules)),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The rules in force now.
    pub fn current(&self) -> Arc<Rules> {
        // A poisoned lock still holds a whole `Arc`: the writer only ever swaps it.
        match self.current.read() {
            Ok(rules) => rules.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the directory again and puts the result in force; on error the rules in force stay.
    pub fn reload(&self) -> Result<Arc<Rules>, InvalidRules> {
        let Some(dir) = &self.dir else {
            return Ok(self.current());
        };
        let rules = Arc::new(Rules::load_dir(dir)?);
        match self.current.write() {
            Ok(mut current) => *current = rules.clone(),
            Err(poisoned) => *poisoned.into_inner() = rules.clone(),
        }
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_replaces_the_rules_and_a_bad_one_keeps_them() {
        let dir = tempfile::TempDir::new().expect("dir");
        let file = dir.path().join("trust.toml");
        std::fs::write(
            &file,
            "[[trusted]]\nurl = \"https://a.example/v1/{rest:path}\"\n",
        )
        .expect("write");
        let live = LiveRules::load(Some(dir.path().to_path_buf())).expect("loads");
        let before = live.current();
        assert!(before.trusted[0].matches("GET", "https://a.example/v1/x"));

        std::fs::write(
            &file,
            "[[trusted]]\nurl = \"https://b.example/{rest:path}\"\n",
        )
        .expect("write");
        live.reload().expect("reloads");
        let after = live.current();
        assert!(after.trusted[0].matches("GET", "https://b.example/x"));
        assert!(
            before.trusted[0].matches("GET", "https://a.example/v1/x"),
            "a snapshot taken before the reload is unchanged"
        );

        std::fs::write(&file, "[[trusted]]\nurl = 7\n").expect("write");
        let error = live.reload().expect_err("does not parse");
        assert!(error.to_string().contains("trust.toml"), "{error}");
        assert!(
            live.current().trusted[0].matches("GET", "https://b.example/x"),
            "the rules in force stay"
        );
    }
}
