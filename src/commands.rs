//! The subcommands, at the edge: library calls, messages for people, exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use distill_gate::config::{self, ModelSource, ModelSpec};
use distill_gate::diagnostics::Problems;
use distill_gate::fingerprint::{sha256_file, sha256_hex};
use distill_gate::model::http::budget::Budget;
use distill_gate::model::http::probe::ProbeReport;
use distill_gate::model::transcript::{self, TranscriptEntry, TranscriptWriter, key_of};
use distill_gate::model::{GenerationRequest, GenerationSettings, Model, ModelError, batching};
use distill_gate::report;
use distill_gate::run::execute::{self, RunError, RunManifest};
use distill_gate::run::identity::{self, ModelIds};
use distill_gate::run::journal::{self, Journal, Role};
use distill_gate::run::plan::{self, Plan};
use distill_gate::run::progress::Progress;
use distill_gate::run::shard::Shard;
use distill_gate::run::summarize::summarize;
use distill_gate::run::timings::Timings;
use distill_gate::suite;
use distill_gate::summary::{ModelInfo, Summary};

/// The committed demo config, run by `distill-gate run` with no argument.
pub const DEMO_CONFIG: &str = "fixtures/gate.toml";

/// Exit code when the run could not be evaluated (bad input, a model that
/// cannot run): the one definition the CLI uses.
pub const EXIT_BROKEN: u8 = 2;

fn print_problems(p: &Problems) -> u8 {
    eprintln!("{p}");
    eprintln!(
        "error: the run could not be evaluated ({} problem(s))",
        p.0.len()
    );
    EXIT_BROKEN
}

/// Loads the config and suites and checks every replay transcript covers the plan.
fn load_plan(config_path: &Path) -> Result<std::result::Result<(Plan, String), Problems>> {
    let config = match config::load(config_path) {
        Ok(c) => c,
        Err(p) => return Ok(Err(p)),
    };
    distill_gate::sandbox::allow_unsafe(config.run.unsafe_sandbox);
    let bytes = std::fs::read(config_path).with_context(|| config_path.display().to_string())?;
    // Every model is checked before any runs, so no answer is lost to a
    // checkpoint that cannot be opened.
    let mut problems = distill_gate::model::open::source_problems(&config);
    let plan = match plan::plan(config) {
        Ok(p) => p,
        Err(p) => {
            problems.extend(p.0);
            return Ok(Err(Problems(problems)));
        }
    };
    // Replay transcripts are read and checked on one thread per core.
    let coverage =
        distill_gate::run::parallel::map_in_order(plan.config.models().collect(), |spec| {
            match &spec.source {
                ModelSource::Replay { transcript } if !transcript.exists() => Ok(()), // reported above
                _ => execute::check_replay_coverage(&plan, spec),
            }
        });
    for covered in coverage {
        if let Err(p) = covered {
            problems.extend(p.0);
        }
    }
    // Code is refused before any model runs when the sandbox cannot
    // isolate it here (and `[run] unsafe_sandbox` does not allow that).
    if plan.scores_code()
        && let Err(why) = distill_gate::sandbox::isolation_here()
    {
        problems.push(plan.config.problem("run.unsafe_sandbox", why));
    }
    if !problems.is_empty() {
        return Ok(Err(Problems(problems)));
    }
    for c in &plan.contamination {
        eprintln!("warning: contamination: {}", c.describe());
    }
    Ok(Ok((plan, sha256_hex(&bytes))))
}

/// `distill-gate validate`.
pub fn validate(config_path: &Path, online: bool) -> Result<u8> {
    let plan = match load_plan(config_path)? {
        Err(p) => return Ok(print_problems(&p)),
        Ok((plan, _)) => plan,
    };
    let items: usize = plan.suites.iter().map(|s| s.items.len()).sum();
    println!(
        "{}: OK: teacher {}, {} student(s), {} suite(s), {} items, {} model calls",
        config_path.display(),
        plan.config.teacher.name,
        plan.config.students.len(),
        plan.suites.len(),
        items,
        plan.total_work()
    );
    if !online {
        return Ok(0);
    }
    let checks = distill_gate::model::open::check_online(&plan.config);
    if checks.is_empty() {
        println!("--online: no HTTP model to check");
    }
    let mut problems = Problems(Vec::new());
    for c in checks {
        let at = format!("{}:{} ({})", config_path.display(), c.line, c.field);
        match c.result {
            Ok(r) => println!("{}: {at}: {}", c.name, online_summary(&r)),
            Err(p) => {
                println!("{}: {at}: FAILED (below)", c.name);
                problems.0.push(p);
            }
        }
    }
    if problems.0.is_empty() {
        Ok(0)
    } else {
        Ok(print_problems(&problems))
    }
}

/// One line on what `validate --online` found for a model that answered.
fn online_summary(r: &ProbeReport) -> String {
    let listed = match r.listed {
        Some(true) => "the server lists the model",
        Some(false) => {
            "WARNING: the server's model list does not name the model (a server of one model, as llama.cpp's, may ignore the name)"
        }
        None => "the server gives no model list",
    };
    let usage = match &r.usage {
        Some(u) => format!(
            "usage reported ({} input, {} cached, {} output tokens)",
            u.prompt_tokens, u.cached_prompt_tokens, u.completion_tokens
        ),
        None => "WARNING: no usage reported: this model's token counts and costs will be estimated (an upper bound)".to_string(),
    };
    format!(
        "reachable, key accepted, answered {:?} in {:.0} ms; {listed}; {usage}",
        r.answer, r.total_ms
    )
}

/// Options of `distill-gate run`.
pub struct RunOptions<'a> {
    /// The gate config.
    pub config: &'a Path,
    /// Discard an earlier journal.
    pub fresh: bool,
    /// Show progress on stderr.
    pub show_progress: bool,
    /// Overrides `[run] max_cost` without changing the config (so the
    /// journal still resumes).
    pub max_cost: Option<f64>,
    /// Only this slice of the items, into the run directory's `shard-i-of-N/`.
    pub shard: Option<Shard>,
    /// Append the short Markdown summary to this file.
    pub summary_md: Option<&'a Path>,
}

/// `distill-gate run`.
pub fn run(o: &RunOptions) -> Result<u8> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let (config_path, fresh, show_progress, shard, summary_md) =
        (o.config, o.fresh, o.show_progress, o.shard, o.summary_md);
    let (mut plan, config_sha256) = match load_plan(config_path)? {
        Err(p) => return Ok(print_problems(&p)),
        Ok(x) => x,
    };
    if let Some(c) = o.max_cost {
        if !(c.is_finite() && c >= 0.0) {
            bail!("--max-cost must be a non-negative number of dollars, got {c}");
        }
        plan.config.run.max_cost = Some(c);
        plan.config.run.max_cost_from_flag = true;
    }
    let (plan, run_dir) = match shard {
        Some(s) => {
            let dir = plan.config.run_dir().join(s.dir_name());
            (s.apply(plan), dir)
        }
        None => {
            let dir = plan.config.run_dir();
            (plan, dir)
        }
    };
    let manifest = RunManifest {
        config_sha256: config_sha256.clone(),
        config: std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf()),
        shard,
    };
    match execute::prepare_run_dir(&run_dir, &manifest, fresh) {
        Ok(()) => {}
        Err(RunError::Input(p)) => return Ok(print_problems(&p)),
        Err(e) => return Err(e.into()),
    }
    let mut journal = match Journal::open(&run_dir.join("results.jsonl")) {
        Ok(j) => j,
        Err(p) => return Ok(print_problems(&p)),
    };
    let ids = match ModelIds::of_plan(&plan) {
        Ok(ids) => ids,
        Err(p) => return Ok(print_problems(&p)),
    };
    let mut progress = Progress::new(show_progress);
    timings.setup_secs = started.elapsed().as_secs_f64();
    match execute::execute(&plan, &ids, &mut journal, &mut progress, &mut timings) {
        Ok(()) => {}
        Err(RunError::Input(p)) => return Ok(print_problems(&p)),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_BROKEN);
        }
    }
    let models = plan_models(&plan, &ids)?;
    transcript::release_shared();
    // The journal holds no lines in memory: the reports read them back, now
    // that the models (and any replayed transcripts) are gone.
    let journal_path = journal.path().to_path_buf();
    drop(journal);
    let summary = match finish(
        &plan,
        &ids,
        &journal_path,
        &config_sha256,
        &run_dir,
        models,
        &mut timings,
    )? {
        Ok(s) => s,
        Err(p) => return Ok(print_problems(&p)),
    };
    write_summary_md(summary_md, &report::summary_md::render_run(&summary))?;
    timings.total_secs = started.elapsed().as_secs_f64();
    if show_progress {
        eprintln!("{}", timings.render());
    }
    let timings_path = run_dir.join("timings.json");
    std::fs::write(
        &timings_path,
        serde_json::to_string_pretty(&timings)? + "\n",
    )
    .with_context(|| timings_path.display().to_string())?;
    Ok(summary.exit_code as u8)
}

/// Appends `text` to the file at `path` (created if missing), as
/// `$GITHUB_STEP_SUMMARY` expects.
pub fn write_summary_md(path: Option<&Path>, text: &str) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("--summary-md {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("--summary-md {}", path.display()))
}

/// What the reports say about each model of a plan, teacher first.
fn plan_models(plan: &Plan, ids: &ModelIds) -> Result<Vec<ModelInfo>> {
    plan.config
        .models()
        .map(|spec| {
            let role = if spec.name == plan.config.teacher.name {
                Role::Teacher
            } else {
                Role::Student
            };
            let mut info = model_info(spec, role)?;
            info.model_id = ids
                .get(&spec.name)
                .map(|id| id.0.clone())
                .unwrap_or_default();
            Ok(info)
        })
        .collect()
}

/// Summarises a journal, writes every report and prints the table; the
/// journal's problems when a line does not parse or is not the current
/// answer of the model the config names (see [`identity::check_journal`]).
/// The journal's lines are held without their answer texts, which the
/// reports read back from the file as they write them.
fn finish(
    plan: &Plan,
    ids: &ModelIds,
    journal_path: &Path,
    config_sha256: &str,
    run_dir: &Path,
    models: Vec<ModelInfo>,
    timings: &mut Timings,
) -> Result<Result<Summary, Problems>> {
    let started = Instant::now();
    let (entries, texts) = match journal::read_for_reports(journal_path)
        .and_then(|e| Ok((e, journal::AnswerTexts::open(journal_path)?)))
    {
        Ok(x) => x,
        Err(p) => return Ok(Err(p)),
    };
    if let Err(p) = identity::check_journal(Some(plan), ids, &entries, journal_path) {
        return Ok(Err(p));
    }
    let summary = summarize(plan, &entries, models, config_sha256)?;
    timings.statistics_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let reproduce = format!("distill-gate run {}", plan.config.path.display());
    let tasks = report::html::task_texts(plan);
    let ctx = report::ReportContext::new(&summary, &entries)
        .with_reproduce(&reproduce)
        .with_tasks(&tasks)
        .with_texts(&texts);
    report::write_reports(run_dir, &ctx, &report::standard_exporters())
        .with_context(|| format!("writing reports in {}", run_dir.display()))?;
    timings.reports_secs = started.elapsed().as_secs_f64();
    print!(
        "{}",
        report::terminal::render_terminal(&summary, std::io::stdout().is_terminal())
    );
    println!("reports: {}", report::lexically_normal(run_dir).display());
    Ok(Ok(summary))
}

/// What the reports say about a model, computed without loading it.
fn model_info(spec: &ModelSpec, role: Role) -> Result<ModelInfo> {
    let (backend, fingerprint) = match &spec.source {
        ModelSource::Replay { transcript } => {
            let t = transcript::read_shared(transcript).map_err(|p| anyhow::anyhow!("{p}"))?;
            let m = t
                .model
                .clone()
                .unwrap_or_else(|| distill_gate::model::ModelIdentity {
                    backend: "unknown".into(),
                    name: spec.name.clone(),
                    fingerprint: String::new(),
                });
            (
                format!("replay of {} ({})", m.backend, m.name),
                m.fingerprint,
            )
        }
        ModelSource::Local { path, backend, .. } => (
            format!("local burn ({backend})"),
            checkpoint_fingerprint(path)?,
        ),
        ModelSource::Http(h) => (
            format!("{} API: {}", h.provider.as_str(), h.describe()),
            h.model.clone(),
        ),
    };
    let p = &spec.price;
    let mut price = Vec::new();
    if let (Some(i), Some(o)) = (p.input_per_mtok, p.output_per_mtok) {
        price.push(format!("${i}/M input, ${o}/M output tokens"));
    }
    if let Some(h) = p.per_hour {
        price.push(format!("${h}/compute hour"));
    }
    if let Some(s) = &p.source {
        price.push(format!("source: {s}"));
    }
    Ok(ModelInfo {
        name: spec.name.clone(),
        role,
        backend,
        fingerprint,
        model_id: String::new(),
        price: if price.is_empty() {
            "unpriced".into()
        } else {
            price.join("; ")
        },
        categories: spec.categories.clone(),
        few_shot: spec.few_shot,
    })
}

/// SHA-256 of a checkpoint's weights file (`.gguf`, or `model.safetensors` in a directory).
fn checkpoint_fingerprint(path: &Path) -> Result<String> {
    let file = if path.is_dir() {
        path.join("model.safetensors")
    } else {
        path.to_path_buf()
    };
    sha256_file(&file).with_context(|| file.display().to_string())
}

/// `distill-gate report` (of a whole run or of one shard).
pub fn report(run_dir: &Path, summary_md: Option<&Path>) -> Result<u8> {
    let manifest_path = run_dir.join("run.json");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("{}: not a run directory", manifest_path.display()))?;
    let manifest: RunManifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: malformed", manifest_path.display()))?;
    let (plan, sha) = match load_plan(&manifest.config)? {
        Err(p) => return Ok(print_problems(&p)),
        Ok(x) => x,
    };
    if sha != manifest.config_sha256 {
        bail!(
            "{} changed since this run ({}): its journal no longer matches; re-run it",
            manifest.config.display(),
            run_dir.display()
        );
    }
    let plan = match manifest.shard {
        Some(s) => s.apply(plan),
        None => plan,
    };
    let ids = match ModelIds::of_plan(&plan) {
        Ok(ids) => ids,
        Err(p) => return Ok(print_problems(&p)),
    };
    let models = plan_models(&plan, &ids)?;
    let summary = match finish(
        &plan,
        &ids,
        &run_dir.join("results.jsonl"),
        &sha,
        run_dir,
        models,
        &mut Timings::default(),
    )? {
        Ok(s) => s,
        Err(p) => return Ok(print_problems(&p)),
    };
    write_summary_md(summary_md, &report::summary_md::render_run(&summary))?;
    Ok(summary.exit_code as u8)
}

/// `distill-gate merge`: shard runs into one run directory `out`. The
/// config is the one the shards' `run.json` names, or `config` (which must
/// have the same content) when it lives elsewhere on this machine.
pub fn merge(
    shard_dirs: &[PathBuf],
    out: &Path,
    config: Option<&Path>,
    summary_md: Option<&Path>,
) -> Result<u8> {
    use distill_gate::run::merge;
    let shards = shard_dirs
        .iter()
        .map(|d| merge::read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut manifest = merge::check_shards(&shards)?;
    if let Some(c) = config {
        manifest.config = std::path::absolute(c).unwrap_or_else(|_| c.to_path_buf());
    }
    // The suites are needed (the merged summary counts every planned item);
    // the models are not: their identities come from the shards' summaries.
    let config = match config::load(&manifest.config) {
        Ok(c) => c,
        Err(p) => return Ok(print_problems(&p)),
    };
    let bytes =
        std::fs::read(&manifest.config).with_context(|| manifest.config.display().to_string())?;
    if sha256_hex(&bytes) != manifest.config_sha256 {
        bail!(
            "{} is not the config the shards ran (its content differs from their config_sha256)",
            manifest.config.display()
        );
    }
    let plan = match plan::plan(config) {
        Ok(p) => p,
        Err(p) => return Ok(print_problems(&p)),
    };
    let entries = merge::merge_entries(&plan, &shards)?;
    if out.join("results.jsonl").exists() {
        bail!(
            "{} already holds a journal; merge into a new directory",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let manifest_text = serde_json::to_string_pretty(&manifest)? + "\n";
    report::write_atomic(&out.join("run.json"), manifest_text.as_bytes())?;
    let mut journal_text = String::new();
    for e in &entries {
        journal_text.push_str(&serde_json::to_string(e)?);
        journal_text.push('\n');
    }
    let journal_path = out.join("results.jsonl");
    report::write_atomic(&journal_path, journal_text.as_bytes())?;
    let results = entries.len();
    drop((entries, journal_text));
    let models = shards.first().map(|s| s.models.clone()).unwrap_or_default();
    // Every merged line must be the answer of the model the shards'
    // summaries name (check_shards made sure they name the same ones).
    let ids = ModelIds::from_models(&models);
    let summary = match finish(
        &plan,
        &ids,
        &journal_path,
        &manifest.config_sha256,
        out,
        models,
        &mut Timings::default(),
    )? {
        Ok(s) => s,
        Err(p) => return Ok(print_problems(&p)),
    };
    eprintln!(
        "merged {} shards ({} results) into {}",
        shards.len(),
        results,
        out.display()
    );
    write_summary_md(summary_md, &report::summary_md::render_run(&summary))?;
    Ok(summary.exit_code as u8)
}

/// `distill-gate plan` from expected rates.
pub fn plan(input: &distill_gate::plan::PlanInput) -> Result<u8> {
    let p = distill_gate::plan::plan(input)?;
    println!(
        "teacher accuracy {}, student accuracy {} (retention {}), disagreement {}",
        input.teacher_accuracy, p.student_accuracy, input.retention, input.disagreement
    );
    let rule = format!(
        "min_retention {}, confidence {}, {} interval, at least {} teacher-right items",
        input.threshold, input.confidence, input.method, input.min_teacher_correct
    );
    match p.items {
        Some(n) => println!(
            "{n} paired items in total (a fresh suite) PASS with probability at least {}%{} ({rule}; \
             about {:.0} of them right for the teacher)",
            input.power * 100.0,
            match p.probability {
                Some(pr) => format!(" (exactly {:.1}%)", pr * 100.0),
                None => " (large-sample estimate)".to_string(),
            },
            p.teacher_correct.unwrap_or(0.0)
        ),
        None => println!(
            "no suite size: an expected retention of {} does not exceed min_retention {}, \
             so the gate would tend to FAIL",
            input.retention, input.threshold
        ),
    }
    Ok(0)
}

/// `distill-gate plan --run DIR`: more items for each INCONCLUSIVE gate.
pub fn plan_more(run_dir: &Path, power: f64) -> Result<u8> {
    let path = run_dir.join("summary.json");
    let bytes = std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let summary: Summary =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: malformed", path.display()))?;
    let rows = distill_gate::plan::more_items(&summary, power)?;
    if rows.is_empty() {
        println!("no INCONCLUSIVE gate in {}", run_dir.display());
    }
    for r in rows {
        let more = match (r.more, r.total) {
            (Some(k), Some(total)) => format!(
                "{k} more paired items ({total} in total) would decide it with probability \
                 {power}{}",
                if r.exact {
                    ""
                } else {
                    " (large-sample estimate)"
                }
            ),
            _ => "no number of added items is likely to decide it".to_string(),
        };
        println!(
            "{} on {}: {} items, teacher accuracy {:.3}, retention {}, disagreement {:.3}: {more}",
            r.student,
            r.suite,
            r.n,
            r.teacher_accuracy,
            r.retention
                .map_or("not measurable".to_string(), |x| format!("{x:.4}")),
            r.disagreement
        );
    }
    Ok(0)
}

/// `distill-gate suites list`.
pub fn suites_list(dir: &Path) -> Result<u8> {
    let listings = match suite::list_suites(dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return Ok(EXIT_BROKEN);
        }
    };
    let mut broken = false;
    for l in &listings {
        match &l.summary {
            Some(s) => {
                println!("{} {} ({})", s.name, s.version, l.dir.display());
                if !s.description.is_empty() {
                    println!("  {}", s.description);
                }
                for split in &s.splits {
                    let cats: Vec<String> = split
                        .categories
                        .iter()
                        .map(|(c, n)| format!("{c} {n}"))
                        .collect();
                    println!(
                        "  {}: {} tasks ({})",
                        split.name,
                        split.tasks,
                        cats.join(", ")
                    );
                }
            }
            None => {
                broken = true;
                println!("{} (does not load)", l.dir.display());
                for p in &l.problems {
                    println!("  {p}");
                }
            }
        }
    }
    Ok(if broken { EXIT_BROKEN } else { 0 })
}

/// `distill-gate suites import-humaneval`: writes the suite, then (with
/// `verify`) scores every canonical solution as if a model had answered it;
/// any that fails means the file or the sandbox is broken (exit 2).
pub fn import_humaneval(
    file: &Path,
    out: &Path,
    name: Option<&str>,
    max_tokens: u32,
    verify: bool,
) -> Result<u8> {
    let name = match name {
        Some(n) => n.to_string(),
        None => out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("--out has no directory name; pass --name")?,
    };
    let imported = match suite::humaneval::import(file, out, &name, max_tokens) {
        Ok(i) => i,
        Err(problems) => {
            eprintln!("{problems}");
            return Ok(EXIT_BROKEN);
        }
    };
    println!(
        "wrote {} problems to {} (source sha256 {})",
        imported.tasks,
        imported.dir.display(),
        imported.source_sha256
    );
    if !verify {
        return Ok(0);
    }
    let loaded = match suite::load_suite(out) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(EXIT_BROKEN);
        }
    };
    let tasks = loaded
        .split("test")
        .map(|s| s.tasks.as_slice())
        .unwrap_or_default();
    let started = Instant::now();
    let failures = canonical_failures(&loaded, tasks);
    // A sandbox that cannot run anything fails every problem the same way:
    // said once.
    let mut said: Option<&str> = None;
    let mut repeats = 0;
    for (id, detail) in &failures {
        if detail.starts_with("sandbox error:") && said == Some(detail.as_str()) {
            repeats += 1;
            continue;
        }
        eprintln!("{id}: canonical solution fails: {detail}");
        said = Some(detail);
    }
    if repeats > 0 {
        eprintln!("({repeats} more canonical solution(s) failed with the same sandbox error)");
    }
    println!(
        "verified {}/{} canonical solutions pass in the sandbox ({:.1} s)",
        tasks.len() - failures.len(),
        tasks.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(if failures.is_empty() { 0 } else { EXIT_BROKEN })
}

/// The tasks whose canonical solution does not score 1, scored on one
/// thread per core.
fn canonical_failures(loaded: &suite::Suite, tasks: &[suite::Task]) -> Vec<(String, String)> {
    distill_gate::run::parallel::map_in_order(tasks.iter().collect(), |task| {
        let solution = task.target["solution"].as_str().unwrap_or_default();
        let score = loaded.score(task, solution);
        (score.value < 1.0).then(|| (task.id.clone(), score.detail))
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Which model `record` asks.
pub enum RecordModel {
    /// A local checkpoint (Hugging Face directory or `.gguf`).
    Checkpoint(PathBuf),
    /// A model entry (teacher or student) of a gate config, e.g. an HTTP API.
    FromConfig {
        /// The gate config.
        config: PathBuf,
        /// The entry's `name`.
        name: String,
    },
}

/// Options of `distill-gate record`.
pub struct RecordOptions {
    /// The model.
    pub model: RecordModel,
    /// Suite directory.
    pub suite: PathBuf,
    /// Split.
    pub split: String,
    /// Transcript file.
    pub out: PathBuf,
    /// Only these categories (empty: all).
    pub categories: Vec<String>,
    /// First N items only.
    pub limit: Option<usize>,
    /// CPU backend.
    pub backend: distill_gate::llm::Backend,
    /// Batch size.
    pub batch_size: usize,
    /// Answers per task and how they are drawn.
    pub sampling: plan::Sampling,
}

/// Provenance appended beside a transcript (`<out>.provenance.jsonl`, one
/// line per `record` invocation).
#[derive(serde::Serialize)]
struct Provenance<'a> {
    model: distill_gate::model::ModelIdentity,
    /// The checkpoint, or the gate config holding the model entry.
    source: &'a Path,
    suite: &'a str,
    suite_version: &'a str,
    split: &'a str,
    items: usize,
    harness_version: &'static str,
    recorded_at_unix: u64,
    /// CPU backend and batch size of a local checkpoint (absent for a config entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<usize>,
    command: String,
}

/// `distill-gate record`.
pub fn record(o: &RecordOptions) -> Result<u8> {
    if o.sampling.samples > 1 && o.sampling.temperature.is_none_or(|t| t <= 0.0) {
        eprintln!(
            "--samples {} needs --temperature > 0 (greedy decoding gives the same answer every time)",
            o.sampling.samples
        );
        return Ok(EXIT_BROKEN);
    }
    let s = match suite::load_suite(&o.suite) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(EXIT_BROKEN);
        }
    };
    let Some(split) = s.split(&o.split) else {
        eprintln!("{}: no split {:?}", o.suite.display(), o.split);
        return Ok(EXIT_BROKEN);
    };
    if let Some(unknown) = o
        .categories
        .iter()
        .find(|c| !split.tasks.iter().any(|t| &t.category == *c))
    {
        eprintln!(
            "--category {unknown:?}: the {} split of {} has no such category (it has: {})",
            o.split,
            o.suite.display(),
            split.categories().join(", ")
        );
        return Ok(EXIT_BROKEN);
    }
    let requests: Vec<GenerationRequest> = plan::select(&split.tasks, &o.categories, o.limit)
        .into_iter()
        .map(|i| &split.tasks[i])
        .flat_map(|t| {
            o.sampling.requests(GenerationRequest {
                id: format!("{}/{}", s.config.name, t.id),
                prompt: suite::build_prompt(&s, t),
                settings: s.generation_settings(t),
            })
        })
        .collect();
    let done = if o.out.exists() {
        Some(transcript::read(&o.out).map_err(|p| anyhow::anyhow!("{p}"))?)
    } else {
        None
    };
    // In prompt order, so a batch shares its category's prompt prefix
    // (prefilled once by a local model), as in `run`.
    let mut pending: Vec<&GenerationRequest> = requests
        .iter()
        .filter(|r| !done.as_ref().is_some_and(|t| t.completes(r)))
        .collect();
    pending.sort_by(|a, b| a.prompt.cmp(&b.prompt));
    let (mut model, source) = match open_record_model(o)? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let identity = model.identity();
    let mut writer = TranscriptWriter::open(&o.out).with_context(|| o.out.display().to_string())?;
    let errored = pending
        .iter()
        .filter(|r| done.as_ref().is_some_and(|t| t.contains(r)))
        .count();
    eprintln!(
        "recording {} on {}/{}: {} items, {} already in {}{}",
        identity.name,
        s.config.name,
        o.split,
        requests.len(),
        requests.len() - pending.len(),
        o.out.display(),
        if errored > 0 {
            format!(" ({errored} recorded error(s) asked again)")
        } else {
            String::new()
        }
    );
    let started = Instant::now();
    let mut finished = 0usize;
    let batches = batching::request_batches(&pending, |r| &r.prompt, model.preferred_batch_size());
    for chunk in batches.into_iter().map(|range| &pending[range]) {
        let batch: Vec<GenerationRequest> = chunk.iter().map(|r| (*r).clone()).collect();
        let mut fatal = None;
        for (req, answer) in batch.iter().zip(model.complete_batch(&batch)) {
            let (completion, error) = match answer {
                Ok(c) => (Some(c), None),
                // Never obtained: not written, so asked again when resumed.
                Err(ModelError::Fatal(msg)) => {
                    fatal.get_or_insert(msg);
                    continue;
                }
                Err(ModelError::Stopped(_)) => continue,
                Err(e) => (None, Some(e.to_string())),
            };
            writer.append(&TranscriptEntry {
                key: key_of(req),
                model: identity.clone(),
                request_id: req.id.clone(),
                prompt: req.prompt.clone(),
                settings: req.settings.clone(),
                completion,
                error,
            })?;
        }
        if let Some(msg) = fatal {
            eprintln!(
                "error: {msg}\n(answers so far are saved in {}; run the same command again to resume)",
                o.out.display()
            );
            return Ok(EXIT_BROKEN);
        }
        finished += chunk.len();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "  {finished}/{} ({:.1} items/s)",
            pending.len(),
            finished as f64 / secs.max(1e-9)
        );
    }
    let local = matches!(o.model, RecordModel::Checkpoint(_));
    let provenance = Provenance {
        model: identity,
        source: &source,
        suite: &s.config.name,
        suite_version: &s.config.version,
        split: &o.split,
        items: requests.len(),
        harness_version: env!("CARGO_PKG_VERSION"),
        recorded_at_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        backend: local.then_some(o.backend.name()),
        batch_size: local.then_some(o.batch_size),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let mut prov_path = o.out.clone().into_os_string();
    prov_path.push(".provenance.jsonl");
    let prov_path = PathBuf::from(prov_path);
    let line = serde_json::to_string(&provenance)? + "\n";
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&prov_path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
        .with_context(|| prov_path.display().to_string())?;
    Ok(0)
}

/// A model `record` asks, and the file it comes from (checkpoint or config).
type OpenedModel = (Box<dyn Model>, PathBuf);

/// Opens the model `record` asks; `Err(code)` after printing what is wrong
/// with a config.
fn open_record_model(o: &RecordOptions) -> Result<std::result::Result<OpenedModel, u8>> {
    match &o.model {
        RecordModel::Checkpoint(path) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let model =
                distill_gate::model::open::open_local(&name, path, o.backend, o.batch_size)?;
            Ok(Ok((Box::new(model), path.clone())))
        }
        RecordModel::FromConfig { config, name } => {
            let cfg = match config::load(config) {
                Ok(c) => c,
                Err(p) => return Ok(Err(print_problems(&p))),
            };
            let Some(spec) = cfg.models().find(|m| &m.name == name) else {
                let names: Vec<&str> = cfg.models().map(|m| m.name.as_str()).collect();
                bail!(
                    "{}: no model named {name:?} (it has {})",
                    config.display(),
                    names.join(", ")
                );
            };
            let budget = std::sync::Arc::new(Budget::of_run(
                cfg.run.max_cost,
                cfg.run.max_cost_from_flag,
                0.0,
            ));
            let model = execute::open_model(spec, &budget)?;
            Ok(Ok((model, config.clone())))
        }
    }
}

/// `distill-gate generate`.
pub fn generate(
    model_path: &Path,
    backend: distill_gate::llm::Backend,
    batch_size: usize,
    prompts: &[String],
    settings: &GenerationSettings,
) -> Result<u8> {
    let name = model_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let load = Instant::now();
    let mut model = distill_gate::model::open::open_local(&name, model_path, backend, batch_size)?;
    eprintln!(
        "loaded {} in {:.2}s ({backend})",
        model_path.display(),
        load.elapsed().as_secs_f64()
    );
    let requests: Vec<GenerationRequest> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| GenerationRequest {
            id: i.to_string(),
            prompt: p.clone(),
            settings: settings.clone(),
        })
        .collect();
    let started = Instant::now();
    let answers = model.complete_batch(&requests);
    let wall = started.elapsed().as_secs_f64();
    let (mut prompt_tokens, mut completion_tokens, mut failed) = (0u64, 0u64, false);
    for (i, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(c) => {
                if prompts.len() == 1 {
                    println!("{}", c.text);
                } else {
                    println!("{}", serde_json::json!({"index": i, "text": c.text}));
                }
                prompt_tokens += c.usage.prompt_tokens;
                completion_tokens += c.usage.completion_tokens;
                eprintln!(
                    "[{i}] prompt {} tokens, completion {} tokens, first token {:.0} ms, total {:.0} ms, finish {:?}",
                    c.usage.prompt_tokens,
                    c.usage.completion_tokens,
                    c.latency.first_token_ms.unwrap_or(f64::NAN),
                    c.latency.total_ms,
                    c.finish
                );
            }
            Err(e) => {
                eprintln!("[{i}] error: {e}");
                failed = true;
            }
        }
    }
    eprintln!(
        "{} request(s) in {wall:.2}s: {prompt_tokens} prompt + {completion_tokens} completion tokens, {:.1} completion tokens/s",
        prompts.len(),
        completion_tokens as f64 / wall.max(1e-9)
    );
    Ok(if failed { EXIT_BROKEN } else { 0 })
}

/// Options of `distill-gate init-student`.
pub struct StudentShape {
    /// Checkpoint whose tokenizer the student takes.
    pub tokenizer_from: PathBuf,
    /// Decoder layers.
    pub layers: usize,
    /// Model width.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Feed-forward width.
    pub intermediate: usize,
    /// Initialisation seed.
    pub seed: u64,
    /// Output directory.
    pub out: PathBuf,
}

/// `distill-gate init-student`.
pub fn init_student(o: &StudentShape) -> Result<u8> {
    use distill_gate::llm::{Checkpoint, LlamaConfig, StorageDtype, config::EosTokens};
    let source = Checkpoint::load(&o.tokenizer_from)?;
    let config = LlamaConfig {
        vocab_size: source.config.vocab_size,
        hidden_size: o.hidden,
        intermediate_size: o.intermediate,
        num_hidden_layers: o.layers,
        num_attention_heads: o.heads,
        num_key_value_heads: Some(o.kv_heads),
        head_dim: None,
        max_position_embeddings: source.config.max_position_embeddings.min(2048),
        rms_norm_eps: source.config.rms_norm_eps,
        rope_theta: source.config.rope_theta,
        tie_word_embeddings: true,
        bos_token_id: source.config.bos_token_id,
        eos_token_id: Some(EosTokens::Many(source.tokenizer.eos.clone())),
        architectures: vec!["LlamaForCausalLM".into()],
        model_type: "llama".into(),
        torch_dtype: Some("float32".into()),
        output_tokens: None,
    };
    distill_gate::llm::tensor_layout::validate_config(&config, &o.out)?;
    let weights = distill_gate::llm::decoder::random_weights(&config, o.seed, 0.02);
    let params: usize = weights.values().map(|t| t.data.len()).sum();
    let student = Checkpoint {
        config,
        weights,
        quantized: Default::default(),
        tokenizer: source.tokenizer,
        fingerprint: String::new(),
        source: o.out.clone(),
    };
    let fingerprint = student.save_hf_dir(&o.out, StorageDtype::F16)?;
    eprintln!(
        "wrote {} ({params} parameters, seed {}, sha256 {fingerprint})",
        o.out.display(),
        o.seed
    );
    Ok(0)
}

/// `distill-gate distill`: trains a student, progress on stderr (a line
/// every few seconds and at every evaluation).
pub fn distill(o: &distill_gate::distill::DistillOptions) -> Result<u8> {
    use distill_gate::distill::TrainEvent;
    let started = Instant::now();
    let mut last_print: Option<Instant> = None;
    let mut on_event = |event: TrainEvent| match event {
        TrainEvent::Prepared {
            train,
            validation,
            vocab,
            parameters,
            total_steps,
            start_step,
        } => eprintln!(
            "distilling into {}: {train} training + {validation} validation examples, \
             vocab {vocab}, {parameters} parameters, steps {start_step}..{total_steps}{}",
            o.out.display(),
            o.teacher.as_ref().map_or(String::new(), |t| format!(
                "; token-level distillation from {} (alpha {}, T {})",
                t.model.display(),
                t.kd_weight,
                t.kd_temperature
            ))
        ),
        TrainEvent::Step {
            step,
            total,
            loss,
            lr,
            tokens_per_s,
            eta_s,
        } => {
            if last_print.is_none_or(|t| t.elapsed().as_secs_f64() >= 5.0) || step == total {
                last_print = Some(Instant::now());
                eprintln!(
                    "  step {step}/{total}  loss {loss:.4}  lr {lr:.2e}  {tokens_per_s:.0} tok/s  ETA {}",
                    format_secs(eta_s)
                );
            }
        }
        TrainEvent::Eval(r) => eprintln!(
            "  eval at step {} (epoch {:.2}): train loss {:.4}, validation loss {}{}, grad norm {:.3}{}",
            r.step,
            r.epoch,
            r.train_loss,
            r.val_loss.map_or("-".to_string(), |v| format!("{v:.4}")),
            r.val_kl
                .map_or(String::new(), |k| format!(" (KL to teacher {k:.4})")),
            r.grad_norm,
            if r.best { "  [best: saved]" } else { "" }
        ),
        TrainEvent::Warning(w) => eprintln!("warning: {w}"),
    };
    let summary = distill_gate::distill::distill(o, &mut on_event)?;
    eprintln!(
        "done: {} of {} steps in {} ({:.0} tok/s); best step {} loss {}; wrote {}",
        summary.steps_done,
        summary.total_steps,
        format_secs(started.elapsed().as_secs_f64()),
        summary.tokens_per_s,
        summary.best_step.map_or("-".to_string(), |s| s.to_string()),
        summary
            .best_loss
            .map_or("-".to_string(), |l| format!("{l:.4}")),
        o.out.display()
    );
    Ok(0)
}

/// Seconds as `1h02m03s`, `2m03s` or `3s`.
fn format_secs(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

/// What `distill-gate compare` was asked.
pub struct CompareOptions {
    /// The approved run's directory.
    pub baseline: PathBuf,
    /// The candidate run's directory.
    pub candidate: PathBuf,
    /// Where to write compare.json and compare.md.
    pub out: Option<PathBuf>,
    /// Where to append the short Markdown summary.
    pub summary_md: Option<PathBuf>,
    /// Minimum candidate / baseline accuracy ratio.
    pub min_retention: Option<f64>,
}

/// `distill-gate compare`: exit 0 when every student is approved, 1 when
/// one is rejected or inconclusive, 2 when the runs cannot be compared.
pub fn compare(o: &CompareOptions) -> Result<u8> {
    use distill_gate::compare::{self as cmp, render};
    let baseline = cmp::load_run(&o.baseline)?;
    let candidate = cmp::load_run(&o.candidate)?;
    let result = cmp::compare_runs(
        &baseline,
        &candidate,
        &cmp::CompareOptions {
            min_retention: o.min_retention,
        },
    )?;
    print!("{}", render::render_terminal(&result));
    if let Some(out) = &o.out {
        std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
        let json = serde_json::to_string_pretty(&result)? + "\n";
        report::write_atomic(&out.join("compare.json"), json.as_bytes())?;
        report::write_atomic(
            &out.join("compare.md"),
            render::render_markdown(&result).as_bytes(),
        )?;
        println!("reports: {}", out.display());
    }
    write_summary_md(o.summary_md.as_deref(), &render::render_summary_md(&result))?;
    Ok(result.exit_code as u8)
}

/// `distill-gate quantize`: the checkpoint at `model` written to `out` as
/// GGUF with its matrices stored as `matrix_type`, its output layer
/// restricted to its training answers' tokens with `task_vocab`.
pub fn quantize(
    model: &Path,
    out: &Path,
    task_vocab: bool,
    matrix_type: distill_gate::llm::gguf::GgmlType,
) -> Result<u8> {
    use distill_gate::run::contamination::TRAINING_FILE;
    let mut ckpt = distill_gate::llm::Checkpoint::load(model)?;
    // What it was trained on goes with it (the contamination check reads
    // `training.json` beside a `.gguf` student).
    let log = match model.parent() {
        Some(dir) if model.is_file() => dir.join(TRAINING_FILE),
        _ => model.join(TRAINING_FILE),
    };
    if task_vocab {
        let text = std::fs::read_to_string(&log).with_context(|| {
            format!(
                "--task-vocab reads what the student was trained on from {}",
                log.display()
            )
        })?;
        let summary: distill_gate::distill::DistillSummary = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a distill log", log.display()))?;
        let tokens = distill_gate::distill::train::answer_tokens(&summary, &ckpt.tokenizer)?;
        let vocab = ckpt.config.vocab_size;
        ckpt = ckpt.restrict_output(&tokens)?;
        println!(
            "output layer: {} of {vocab} tokens (the answers in {} and EOS)",
            tokens.len(),
            summary
                .transcripts
                .iter()
                .map(|t| t.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let sha256 = ckpt
        .save_gguf(out, matrix_type)
        .with_context(|| format!("writing {}", out.display()))?;
    let beside = out.parent().map(|dir| dir.join(TRAINING_FILE));
    let same = |copy: &Path| match (copy.canonicalize(), log.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(copy) = beside.filter(|copy| log.is_file() && !same(copy)) {
        std::fs::copy(&log, &copy)
            .with_context(|| format!("copying {} to {}", log.display(), copy.display()))?;
    }
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({:?}, {:.1} MB, sha256 {sha256}) from {}",
        out.display(),
        matrix_type,
        bytes as f64 / 1e6,
        model.display()
    );
    Ok(0)
}
