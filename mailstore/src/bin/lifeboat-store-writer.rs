//! Delivers synthetic messages into a store as fast as it can and prints `stored <seq>`
//! after each delivery returns. The durability test kills it with SIGKILL at random
//! points; benchmarks use it to measure the durable write path.
//!
//! usage: lifeboat-store-writer DATA_DIR OWNER FIRST_SEQ COUNT [CLASS]
//!
//! CLASS is `journal` (the default) or `diverted` (copies that wait for replay, as the
//! replay benchmark needs them).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use lifeboat_mailstore::{Address, Class, NewMessage, Store, synthetic};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (data_dir, owner, first, count, class) = match args.as_slice() {
        [_, d, o, f, c] => (d, o, f, c, "journal"),
        [_, d, o, f, c, class] => (d, o, f, c, class.as_str()),
        _ => {
            eprintln!("usage: lifeboat-store-writer DATA_DIR OWNER FIRST_SEQ COUNT [CLASS]");
            return ExitCode::from(2);
        }
    };
    let Ok(class) = class.parse::<Class>() else {
        eprintln!("lifeboat-store-writer: CLASS is journal or diverted");
        return ExitCode::from(2);
    };
    let (Ok(owner), Ok(first), Ok(count)) = (
        Address::parse(owner),
        first.parse::<u64>(),
        count.parse::<u64>(),
    ) else {
        eprintln!("lifeboat-store-writer: bad OWNER, FIRST_SEQ or COUNT");
        return ExitCode::from(2);
    };
    match run(PathBuf::from(data_dir), owner, first, count, class) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifeboat-store-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    data_dir: PathBuf,
    owner: Address,
    first: u64,
    count: u64,
    class: Class,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&data_dir, "writer.test")?;
    store.lock_for_delivery()?;
    let stdout = std::io::stdout();
    for seq in first..first + count {
        let mut message = NewMessage::new(owner.clone(), "INBOX", synthetic::message(seq), class);
        if class == Class::Diverted {
            message.envelope_from = Some("bench@else.test".into());
            message.envelope_to = vec![owner.clone()];
        }
        store.deliver(message)?;
        let mut out = stdout.lock();
        writeln!(out, "stored {seq}")?;
        out.flush()?;
    }
    Ok(())
}
