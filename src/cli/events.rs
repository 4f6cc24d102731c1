//! `flowfuse events read | tail | verify`: the event store as auditors see it, NDJSON on stdout.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use event_schemas::StreamId;
use eventstore::{EventStore, LogCheckpoint, PgEventStore, StreamRead, VerifyReport};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print one stream's events as NDJSON, one envelope per line, oldest first.
    Read {
        /// The stream, e.g. workflow-0190c1f0-….
        stream: String,
        /// First version to print (1-based).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
        from_version: i64,
        /// Last version to print.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        to_version: Option<i64>,
    },
    /// Print the global log as NDJSON, in commit-safe order. The checkpoint to resume from is
    /// printed on stderr.
    Tail {
        /// Skip events whose global position is below this.
        #[arg(long, default_value_t = 0)]
        from_position: i64,
        /// Start after this checkpoint (`<tx_id>:<position>`, as printed by an earlier tail);
        /// unlike a position, a checkpoint never misses an event that committed late.
        #[arg(long)]
        after: Option<LogCheckpoint>,
        /// Print at most this many events.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// Re-compute hash chains. Exit 0 if intact, 1 naming each broken stream and its first broken version.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct VerifyArgs {
    /// The stream to verify.
    stream: Option<String>,
    /// Verify every stream.
    #[arg(long)]
    all: bool,
}

pub async fn run(database_url: &str, command: EventsCommand) -> anyhow::Result<ExitCode> {
    let store = PgEventStore::new(crate::database::connect(database_url, 4).await?);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = match command {
        EventsCommand::Read { stream, from_version, to_version } => {
            read(&store, &parse_stream(&stream)?, from_version, to_version, &mut out).await
        }
        EventsCommand::Tail { from_position, after, limit } => {
            tail(&store, after.unwrap_or(LogCheckpoint::START), from_position, limit, &mut out).await
        }
        EventsCommand::Verify(args) => return verify(&store, args, &mut out).await,
    };
    match written.and_then(|()| out.flush().map_err(Into::into)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A reader that stops early (`| head`) is not an error.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
    }
}

fn parse_stream(raw: &str) -> anyhow::Result<StreamId> {
    raw.parse().with_context(|| format!("invalid stream {raw:?}"))
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

async fn read(
    store: &PgEventStore,
    stream: &StreamId,
    from_version: i64,
    to_version: Option<i64>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    const PAGE: i64 = 1_000;
    if store.stream_info(stream).await?.is_none() {
        bail!("stream {stream} does not exist");
    }
    let mut next = from_version;
    loop {
        let page = store.read_stream(stream, StreamRead::between(next, to_version).limit(PAGE)).await?;
        for event in &page {
            serde_json::to_writer(&mut *out, event)?;
            out.write_all(b"\n")?;
            next = event.version + 1;
        }
        if (page.len() as i64) < PAGE {
            return Ok(());
        }
    }
}

async fn tail(
    store: &PgEventStore,
    mut after: LogCheckpoint,
    from_position: i64,
    limit: i64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut printed = 0;
    'pages: loop {
        let page = store.read_all(after, 1_000).await?;
        if page.is_empty() {
            break;
        }
        for global in page {
            if printed == limit {
                break 'pages;
            }
            after = global.checkpoint;
            if global.event.global_position < from_position {
                continue;
            }
            serde_json::to_writer(&mut *out, &global.event)?;
            out.write_all(b"\n")?;
            printed += 1;
        }
    }
    out.flush()?;
    eprintln!("checkpoint: {after}");
    Ok(())
}

async fn verify(store: &PgEventStore, args: VerifyArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut reports: Vec<VerifyReport> = Vec::new();
    if let Some(stream) = args.stream {
        let stream = parse_stream(&stream)?;
        if store.stream_info(&stream).await?.is_none() {
            bail!("stream {stream} does not exist");
        }
        reports.push(store.verify_stream(&stream).await?);
    } else {
        let mut after = None;
        loop {
            let streams = store.list_streams(after.clone(), 500).await?;
            let Some(last) = streams.last() else { break };
            after = Some(last.stream_id.to_string());
            for info in &streams {
                reports.push(store.verify_stream(&info.stream_id).await?);
            }
        }
    }
    let events: i64 = reports.iter().map(|r| r.events_checked).sum();
    let broken: Vec<&VerifyReport> = reports.iter().filter(|r| !r.is_intact()).collect();
    for report in &broken {
        let link = report.broken.as_ref().expect("broken reports have a link");
        writeln!(out, "BROKEN {} at version {}: {}", report.stream_id, link.version, link.reason)?;
    }
    if broken.is_empty() {
        writeln!(out, "OK: {} streams, {events} events, every hash chain intact", reports.len())?;
    } else {
        writeln!(out, "FAILED: {} of {} streams have a broken hash chain", broken.len(), reports.len())?;
    }
    out.flush()?;
    Ok(if broken.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
