//! Worker hosts (`faultline campaign --workers workers.toml`): each worker
//! runs one run at a time. faultline copies itself (and `faultline-node`)
//! to the worker when the checksums differ, runs `faultline run-spec`
//! there with the run's exact spec and seed (see [`crate::child`]), follows
//! its progress, and copies the finished run directory into the local
//! campaign, where the run's page is rebuilt with the worker's name on it.
//!
//! On a worker, everything lives under its working directory: `bin/` (the
//! binaries) and `runs/<campaign>/<run>` (a run under way; removed once it
//! is copied back).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use faultline_hosts::inventory::Host;
use faultline_hosts::ssh::{quote, Connection};
use faultline_nemesis::process::NodeCommand;
use faultline_results::RunResults;
use faultline_rundir::placement::{Attempt, RunPlacement};
use faultline_rundir::records::read_record;
use tokio::io::AsyncWriteExt;

use crate::campaign::PlannedRun;
use crate::child::{follow, is_verdict, last_line, Job};
use crate::run::Progress;

/// How long a run on a worker may take beyond its time limit (start-up,
/// heal, final reads, the check) before the worker is given up on.
pub const RUN_GRACE: Duration = Duration::from_secs(300);
/// How long setting a worker up (uploads) may take.
const SETUP_LIMIT: Duration = Duration::from_secs(300);
/// How long a short command on a worker may take.
const SHORT: Duration = Duration::from_secs(30);
/// How long a worker may take to show it still answers.
const ALIVE_CHECK: Duration = Duration::from_secs(10);
/// How long the last clean-up on a worker may take (a lost one does not
/// answer at all).
const CLOSE_LIMIT: Duration = Duration::from_secs(5);
/// How long copying a run directory back may take.
const COPY_LIMIT: Duration = Duration::from_secs(300);

/// A worker host, connected and set up.
pub struct Worker {
    /// Its name in the inventory.
    pub name: String,
    /// How long connecting and setting it up took.
    pub setup: Duration,
    /// The bytes copied to it at setup (0: its binaries were current).
    pub uploaded: u64,
    conn: Connection,
}

/// How a run on a worker ended.
pub enum WorkerEnd {
    /// It ran to a verdict; its directory is in the campaign.
    Verdict(Box<RunResults>),
    /// It failed for a reason of its own (a setup error, exit 2); the
    /// worker still answers.
    Failed(String),
    /// The worker stopped answering.
    Lost(String),
}

impl Worker {
    /// Connect to `host`, check it runs this build's OS and architecture,
    /// and copy `exe` (and the node binary) to it when they differ.
    pub async fn prepare(host: &Host, exe: &Path, node: &NodeCommand) -> anyhow::Result<Worker> {
        let t0 = std::time::Instant::now();
        let conn = Connection::open(host).await?;
        let uname = conn.sh("uname", "uname -sm", SHORT).await?;
        let mut words = uname.split_whitespace();
        let (os, arch) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        anyhow::ensure!(
            os.eq_ignore_ascii_case(std::env::consts::OS) && arch == std::env::consts::ARCH,
            "worker {}: it runs {os} {arch}; this faultline is built for {} {}",
            host.name,
            std::env::consts::OS,
            std::env::consts::ARCH
        );
        let dir = quote(&host.dir);
        conn.sh(
            "creating the working directory",
            &format!("mkdir -p {dir}/bin {dir}/runs"),
            SHORT,
        )
        .await?;
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut uploaded = 0;
        if conn
            .upload_if_changed(exe, &format!("{}/bin/faultline", host.dir), SETUP_LIMIT)
            .await?
        {
            uploaded += size(exe);
        }
        let remote_node = format!("{}/bin/faultline-node", host.dir);
        if node.args.is_empty() {
            if conn
                .upload_if_changed(&node.program, &remote_node, SETUP_LIMIT)
                .await?
            {
                uploaded += size(&node.program);
            }
        } else {
            // The worker's faultline runs its own `node` subcommand; an old
            // faultline-node beside it would be taken instead.
            conn.sh(
                "removing an old faultline-node",
                &format!("rm -f {}", quote(&remote_node)),
                SHORT,
            )
            .await?;
        }
        Ok(Worker {
            name: host.name.clone(),
            setup: t0.elapsed(),
            uploaded,
            conn,
        })
    }

    /// The worker's SSH destination.
    pub fn host(&self) -> &str {
        &self.conn.host.ssh
    }

    /// Run `run` on the worker and copy its directory into `campaign`
    /// (where it must not exist yet); `earlier` are its failed attempts,
    /// recorded in its `placement.json`.
    pub async fn run(
        &self,
        campaign: &Path,
        run: &PlannedRun,
        earlier: &[Attempt],
        progress: Option<&Progress>,
    ) -> WorkerEnd {
        let job = Job {
            plan: run.plan.clone(),
            placement: Some(RunPlacement {
                ran_on: self.name.clone(),
                host: Some(self.host().to_string()),
                cpus: None,
                shared_cores: false,
                attempts: earlier.to_vec(),
            }),
        };
        if let Err(e) = self.try_run(campaign, run, &job, progress).await {
            return self.failed(format!("{e:#}")).await;
        }
        let results = faultline_rundir::RunDir::new(campaign.join(&run.dir)).results();
        match read_record::<RunResults>(&results) {
            Ok(Some(r)) => WorkerEnd::Verdict(Box::new(r)),
            Ok(None) => {
                WorkerEnd::Failed(format!("the copy from {} has no results.json", self.name))
            }
            Err(e) => WorkerEnd::Failed(e),
        }
    }

    /// A failure: the worker's, when it no longer answers.
    async fn failed(&self, why: String) -> WorkerEnd {
        if self.conn.alive(ALIVE_CHECK).await {
            WorkerEnd::Failed(why)
        } else {
            WorkerEnd::Lost(format!("stopped answering ({why})"))
        }
    }

    async fn try_run(
        &self,
        campaign: &Path,
        run: &PlannedRun,
        job: &Job,
        progress: Option<&Progress>,
    ) -> anyhow::Result<()> {
        let camp = campaign
            .file_name()
            .context("the campaign directory has no name")?
            .to_string_lossy()
            .into_owned();
        let host = &self.conn.host;
        let parent = format!("{}/runs/{camp}", host.dir);
        let remote = format!("{parent}/{}", run.dir);
        let script = format!(
            "cd {d} && rm -rf {r} && mkdir -p {p} && exec bin/faultline run-spec --dir {r}",
            d = quote(&host.dir),
            r = quote(&format!("runs/{camp}/{}", run.dir)),
            p = quote(&format!("runs/{camp}"))
        );
        let mut child = self.conn.spawn(&script).await?;
        // Held until the run ends: its end-of-file stops the remote run.
        let mut stdin = child.stdin().take().context("the run's stdin")?;
        let mut line = serde_json::to_vec(job)?;
        line.push(b'\n');
        stdin
            .write_all(&line)
            .await
            .context("sending the run's spec")?;
        let out = child.stdout().take().context("the run's stdout")?;
        let err = child.stderr().take().context("the run's stderr")?;
        let limit = run.plan.time_limit + RUN_GRACE;
        let ended = tokio::time::timeout(limit, async {
            let (_, last) = tokio::join!(follow(out, progress), last_line(err));
            (child.wait().await, last)
        })
        .await;
        drop(stdin);
        let (status, last) = ended
            .map_err(|_| anyhow::anyhow!("the run did not end within {limit:?} of its start"))?;
        let code = status
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("the run's connection")?
            .code();
        anyhow::ensure!(
            is_verdict(code),
            "the run failed ({}): {last}",
            code.map_or("no exit code".into(), |c| format!("exit {c}"))
        );
        let staging = campaign.join(format!(".incoming-{}", run.dir));
        let _ = std::fs::remove_dir_all(&staging);
        self.conn
            .download_dir(&parent, &run.dir, &staging, COPY_LIMIT)
            .await?;
        let dir = campaign.join(&run.dir);
        std::fs::rename(staging.join(&run.dir), &dir)
            .with_context(|| format!("moving the copy into {}", dir.display()))?;
        let _ = std::fs::remove_dir(&staging);
        // The copy is the campaign's now; the worker keeps nothing of it.
        let _ = self
            .conn
            .run(&format!("rm -rf {}", quote(&remote)), SHORT)
            .await;
        Ok(())
    }

    /// Remove the campaign's (empty) directory on the worker and close the
    /// connection.
    pub async fn close(self, campaign: &Path) {
        if let Some(camp) = campaign.file_name() {
            let parent = format!("{}/runs/{}", self.conn.host.dir, camp.to_string_lossy());
            let _ = self
                .conn
                .run(
                    &format!("rmdir {} 2>/dev/null", quote(&parent)),
                    CLOSE_LIMIT,
                )
                .await;
        }
        self.conn.close().await;
    }
}
