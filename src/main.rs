//! The `distill-gate` command line: parses arguments ([`cli`]), calls one
//! library function per command, prints what it returns, and turns an
//! error into its exit code in one place ([`fail`]): 0 every gate passed,
//! 1 a gate failed or was inconclusive, 2 the run could not be evaluated.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use distill_gate::diagnostics::Problems;
use distill_gate::error::{self, EXIT_BROKEN, Error};
use distill_gate::pipeline::{self, Evaluated};
use distill_gate::report::{self, summary_md};
use distill_gate::{compare, model, plan, run, student, suite};

mod cli;

use cli::{Cli, Command, SuitesCommand};

fn main() -> ExitCode {
    distill_gate::allocator::keep_freed_memory();
    match dispatch(Cli::parse().command()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => ExitCode::from(fail(&e)),
    }
}

/// Says an error on stderr and returns its exit code: the one place an
/// error becomes an exit code. A library [`Error`] says itself and knows
/// its code; an argument the command line refused (anyhow, at this edge)
/// is said after `error: ` and means the run could not be evaluated.
fn fail(e: &anyhow::Error) -> u8 {
    let (message, code) = match e.downcast_ref::<Error>() {
        Some(err) => (err.message(), err.exit_code()),
        None => (format!("error: {}", error::chain(e.as_ref())), EXIT_BROKEN),
    };
    if !message.is_empty() {
        eprintln!("{message}");
    }
    code
}

/// Runs one command; its exit code when it finished.
fn dispatch(command: Command) -> anyhow::Result<u8> {
    Ok(match command {
        Command::Run(a) => run(&a.options()?, a.summary_md.as_deref())?,
        Command::Validate { config, online } => validate(&config, online)?,
        Command::Report {
            run_dir,
            summary_md,
        } => report(&run_dir, summary_md.as_deref())?,
        Command::Merge {
            shard_dirs,
            out,
            config,
            summary_md,
        } => merge(&shard_dirs, &out, config.as_deref(), summary_md.as_deref())?,
        Command::Compare(a) => compare(&a)?,
        Command::Plan(a) => plan(&a)?,
        Command::Suites(SuitesCommand::List { dir }) => suites_list(&dir)?,
        Command::Suites(SuitesCommand::ImportHumaneval(a)) => {
            let max_tokens = a.max_tokens.unwrap_or(suite::humaneval::DEFAULT_MAX_TOKENS);
            let import = suite::benchmark::import::<suite::humaneval::HumanEval>;
            import_benchmark(&a, &a.name()?, max_tokens, import)?
        }
        Command::Suites(SuitesCommand::ImportMbpp(a)) => {
            let max_tokens = a.max_tokens.unwrap_or(suite::mbpp::DEFAULT_MAX_TOKENS);
            let import = suite::benchmark::import::<suite::mbpp::Mbpp>;
            import_benchmark(&a, &a.name()?, max_tokens, import)?
        }
        Command::Record(a) => {
            let options = a.options(std::env::args().collect::<Vec<_>>().join(" "))?;
            run::record::record(&options, &mut |event| eprintln!("{event}"))
                .map_err(Error::from)?;
            0
        }
        Command::InitStudent(a) => init_student(&a.options())?,
        Command::Generate(a) => generate(&a)?,
        Command::Distill(a) => distill(&a.options()?)?,
        Command::Quantize(a) => quantize(&a.model, &a.out, a.task_vocab, a.matrix_type.into())?,
    })
}

/// `run`: the verdicts, and (with progress) where the time went.
fn run(o: &pipeline::RunOptions, summary_md: Option<&Path>) -> Result<u8, Error> {
    let done = pipeline::run(o)?;
    let code = say_verdicts(&done, summary_md)?;
    if o.show_progress {
        eprintln!("{}", done.timings.render());
    }
    Ok(code)
}

/// `report`: the re-rendered run's verdicts.
fn report(run_dir: &Path, summary_md: Option<&Path>) -> Result<u8, Error> {
    say_verdicts(&pipeline::rerender(run_dir)?, summary_md)
}

/// Prints an evaluated run's verdict table and where its reports are,
/// appends its short summary to `summary_md`; the run's exit code.
fn say_verdicts(done: &Evaluated, summary_md: Option<&Path>) -> Result<u8, Error> {
    let terminal = std::io::stdout().is_terminal();
    print!(
        "{}",
        report::terminal::render_terminal(&done.summary, terminal)
    );
    println!(
        "reports: {}",
        report::lexically_normal(&done.run_dir).display()
    );
    if let Some(path) = summary_md {
        summary_md::append(path, &summary_md::render_run(&done.summary))?;
    }
    Ok(done.summary.exit_code as u8)
}

/// `merge`: the merged run's verdicts, and what was merged.
fn merge(
    shard_dirs: &[std::path::PathBuf],
    out: &Path,
    config: Option<&Path>,
    summary_md: Option<&Path>,
) -> Result<u8, Error> {
    let merged = pipeline::merge(shard_dirs, out, config)?;
    let code = say_verdicts(&merged.evaluated, summary_md)?;
    eprintln!(
        "merged {} shards ({} results) into {}",
        merged.shards,
        merged.results,
        out.display()
    );
    Ok(code)
}

/// `validate`: the plan in one line; with `online`, what each HTTP model's
/// probe found (its problems, if any, below).
fn validate(config: &Path, online: bool) -> Result<u8, Error> {
    let prepared = run::prepare::prepare(config, &Default::default())?;
    println!("{}: OK: {}", config.display(), prepared.plan.overview());
    if !online {
        return Ok(0);
    }
    let checks = model::open::check_online(&prepared.plan.config);
    if checks.is_empty() {
        println!("--online: no HTTP model to check");
    }
    let mut problems = Vec::new();
    for c in checks {
        let at = format!("{}:{} ({})", config.display(), c.line, c.field);
        match c.result {
            Ok(r) => println!("{}: {at}: {r}", c.name),
            Err(p) => {
                println!("{}: {at}: FAILED (below)", c.name);
                problems.push(p);
            }
        }
    }
    if problems.is_empty() {
        Ok(0)
    } else {
        Err(Error::Problems(distill_gate::diagnostics::Problems(
            problems,
        )))
    }
}

/// `compare`: the decision table; with `--out`, where its files are.
fn compare(a: &cli::CompareArgs) -> Result<u8, Error> {
    let options = compare::CompareOptions {
        min_retention: a.min_retention,
    };
    let out = a.out.as_deref();
    let result = compare::compare_dirs(&a.baseline, &a.candidate, &options, out)?;
    print!("{}", compare::render::render_terminal(&result));
    if let Some(out) = out {
        println!("reports: {}", out.display());
    }
    if let Some(path) = &a.summary_md {
        summary_md::append(path, &compare::render::render_summary_md(&result))?;
    }
    Ok(result.exit_code as u8)
}

/// `plan`: the suite size for the expectations, or (`--run`) the items to
/// add for each INCONCLUSIVE gate of a run.
fn plan(a: &cli::PlanArgs) -> Result<u8, Error> {
    let Some(dir) = &a.run else {
        print!("{}", plan::plan(&a.input())?);
        return Ok(0);
    };
    let rows = plan::more_items_of_run(dir, a.power)?;
    if rows.is_empty() {
        println!("no INCONCLUSIVE gate in {}", dir.display());
    }
    for r in rows {
        println!("{}", r.describe(a.power));
    }
    Ok(0)
}

/// `suites list`: every suite, and the problems of those that do not load.
fn suites_list(dir: &Path) -> Result<u8, Error> {
    let listings = suite::list_suites(dir)?;
    for l in &listings {
        print!("{l}");
    }
    if listings.iter().any(suite::list::SuiteListing::is_broken) {
        return Err(Error::Reported);
    }
    Ok(0)
}

/// A benchmark format's import: source file, suite directory, suite name
/// and completion budget to the suite written.
type BenchmarkImport = fn(&Path, &Path, &str, u32) -> Result<suite::benchmark::Imported, Problems>;

/// `suites import-humaneval` and `suites import-mbpp`: writes the suite
/// with `import` (the format's), then (unless `--no-verify`) checks that
/// every reference solution passes in the sandbox.
fn import_benchmark(
    a: &cli::ImportArgs,
    name: &str,
    max_tokens: u32,
    import: BenchmarkImport,
) -> Result<u8, Error> {
    distill_gate::sandbox::allow_unsafe(a.unsafe_sandbox);
    let imported = import(&a.file, &a.out, name, max_tokens).map_err(Error::Unusable)?;
    println!(
        "wrote {} problems to {} (source sha256 {})",
        imported.tasks,
        imported.dir.display(),
        imported.source_sha256
    );
    if a.no_verify {
        return Ok(0);
    }
    let checked = suite::benchmark::verify(&imported)?;
    for line in checked.failure_lines() {
        eprintln!("{line}");
    }
    println!("{}", checked.summary());
    if !checked.passed() {
        return Err(Error::Reported);
    }
    Ok(0)
}

/// `init-student`: what was written.
fn init_student(o: &student::InitOptions) -> Result<u8, Error> {
    let made = student::init_student(o)?;
    eprintln!(
        "wrote {} ({} parameters, seed {}, sha256 {})",
        o.out.display(),
        made.parameters,
        o.seed,
        made.sha256
    );
    Ok(0)
}

/// `generate`: each completion on stdout (a JSON line each when there are
/// several prompts), its usage and the run's throughput on stderr.
fn generate(a: &cli::GenerateArgs) -> Result<u8, Error> {
    // clap requires exactly one of --prompt and --prompts.
    let prompts = match &a.prompts {
        Some(file) => model::generate::read_prompts(file).map_err(Error::Unusable)?,
        None => a.prompt.iter().cloned().collect(),
    };
    let load = Instant::now();
    let mut model = model::open::open_checkpoint(&a.model, a.backend, a.batch_size)?;
    eprintln!(
        "loaded {} in {:.2}s ({})",
        a.model.display(),
        load.elapsed().as_secs_f64(),
        a.backend
    );
    let run = model::generate::generate(&mut model, &prompts, &a.settings());
    for (i, answer) in run.answers.iter().enumerate() {
        if let Ok(c) = answer {
            match prompts.len() {
                1 => println!("{}", c.text),
                _ => println!("{}", serde_json::json!({"index": i, "text": c.text})),
            }
        }
        eprintln!("{}", run.answer_line(i));
    }
    eprintln!("{}", run.summary());
    if run.failed() {
        return Err(Error::Reported);
    }
    Ok(0)
}

/// `distill`: trains, progress on stderr (a line every few seconds and at
/// every evaluation).
fn distill(o: &distill_gate::distill::DistillOptions) -> Result<u8, Error> {
    let mut log = student::TrainingLog::new(&o.out, o.teacher.as_ref());
    let summary = distill_gate::distill::distill(o, &mut |event| {
        if let Some(line) = log.line(event) {
            eprintln!("{line}");
        }
    })?;
    eprintln!("{}", log.done(&summary));
    Ok(0)
}

/// `quantize`: the output rows kept (with `task_vocab`) and what was written.
fn quantize(
    model: &Path,
    out: &Path,
    task_vocab: bool,
    matrix_type: distill_gate::llm::gguf::GgmlType,
) -> Result<u8, Error> {
    let stored = student::quantize(model, out, task_vocab, matrix_type)?;
    if let Some(rows) = &stored.output {
        let transcripts: Vec<String> = rows
            .transcripts
            .iter()
            .map(|t| t.display().to_string())
            .collect();
        println!(
            "output layer: {} of {} tokens (the answers in {} and EOS)",
            rows.kept,
            rows.vocab,
            transcripts.join(", ")
        );
    }
    println!(
        "wrote {} ({:?}, {:.1} MB, sha256 {}) from {}",
        out.display(),
        matrix_type,
        stored.bytes as f64 / 1e6,
        stored.sha256,
        model.display()
    );
    Ok(0)
}
