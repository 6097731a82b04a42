//! R as the oracle: runs base R (Debian's r-base-core, with r-cran-jsonlite) on a script and
//! returns what it printed. A machine without R fails the test with the reason; it never passes.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Runs `script` with `Rscript --vanilla` and returns its standard output.
pub fn rscript(script: &str) -> String {
    let output = Command::new("Rscript")
        .args(["--vanilla", "-e", script])
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|error| {
            panic!("Rscript could not be run ({error}); R is the oracle of these tests: tests/system-packages.sh test installs r-base-core and r-cran-jsonlite")
        });
    assert!(
        output.status.success(),
        "Rscript failed: {}\n--- script\n{script}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("R printed UTF-8")
}

/// Writes bytes to a fresh file under the test's temporary directory and returns its path, for
/// R to read (`unserialize(readBin(...))`).
pub fn scratch_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("datashield");
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the scratch file");
    path
}

use trellis_datashield::error::DsError;
use trellis_datashield::eval::{Env, MethodKind, MethodTable, Symbols};
use trellis_datashield::functions::builtins;
use trellis_datashield::language::{Arg, Expr};
use trellis_datashield::settings::DisclosureSettings;
use trellis_datashield::value::RObject;

/// A session's symbols with every builtin allowed, for calling builtins directly.
pub struct Session {
    pub symbols: Symbols,
    pub settings: DisclosureSettings,
    pub methods: MethodTable,
    pub seed: i32,
}

impl Session {
    pub fn new(symbols: Vec<(&str, RObject)>) -> Session {
        Session::from_symbols(symbols.into_iter().map(|(k, v)| (k.to_owned(), v)))
    }

    pub fn from_symbols(symbols: impl IntoIterator<Item = (String, RObject)>) -> Session {
        Session {
            symbols: symbols.into_iter().map(|(k, v)| (k, v.into())).collect(),
            settings: DisclosureSettings::default(),
            methods: MethodTable::new(builtins()),
            seed: 1,
        }
    }

    pub fn insert(&mut self, name: &str, value: RObject) {
        self.symbols.insert(name.to_owned(), value.into());
    }

    /// Another session with the same symbols and dsBase's default settings.
    pub fn fork(&self) -> Session {
        Session {
            symbols: self.symbols.clone(),
            ..Session::new(Vec::new())
        }
    }

    pub fn with(mut self, settings: DisclosureSettings) -> Session {
        self.settings = settings;
        self
    }

    pub fn seeded(mut self, seed: i32) -> Session {
        self.seed = seed;
        self
    }

    pub fn eval_as(&self, kind: MethodKind, expr: &Expr) -> Result<RObject, DsError> {
        let env = Env {
            symbols: &self.symbols,
            settings: &self.settings,
            methods: &self.methods,
            kind,
            seed: self.seed,
        };
        env.evaluate(expr)
    }

    /// Evaluates an aggregate expression.
    pub fn eval(&self, expr: &Expr) -> Result<RObject, DsError> {
        self.eval_as(MethodKind::Aggregate, expr)
    }

    /// `function(args)` as an aggregate call.
    pub fn call(&self, function: &str, args: Vec<Arg>) -> Result<RObject, DsError> {
        self.eval(&Expr::Call {
            function: function.to_owned(),
            args,
        })
    }

    /// `function(args)` as an aggregate call that must succeed.
    pub fn ok(&self, function: &str, args: Vec<Arg>) -> RObject {
        self.call(function, args.clone())
            .unwrap_or_else(|e| panic!("{function}({args:?}) failed: {e}"))
    }

    /// `function(positional args)` of the given kind.
    pub fn run(
        &self,
        kind: MethodKind,
        function: &str,
        args: Vec<Expr>,
    ) -> Result<RObject, DsError> {
        let args = args
            .into_iter()
            .map(|value| Arg { name: None, value })
            .collect();
        self.eval_as(
            kind,
            &Expr::Call {
                function: function.into(),
                args,
            },
        )
    }

    pub fn aggregate(&self, function: &str, args: Vec<Expr>) -> Result<RObject, DsError> {
        self.run(MethodKind::Aggregate, function, args)
    }

    pub fn assign(&self, function: &str, args: Vec<Expr>) -> Result<RObject, DsError> {
        self.run(MethodKind::Assign, function, args)
    }
}
