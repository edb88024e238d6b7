//! Delivers synthetic messages into a store as fast as it can and prints `stored <seq>`
//! after each delivery returns. The durability test kills it with SIGKILL at random
//! points; benchmarks use it to measure the durable write path.
//!
//! usage: lifeboat-store-writer DATA_DIR OWNER FIRST_SEQ COUNT

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use lifeboat_mailstore::{Address, Class, NewMessage, Store, synthetic};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, data_dir, owner, first, count] = args.as_slice() else {
        eprintln!("usage: lifeboat-store-writer DATA_DIR OWNER FIRST_SEQ COUNT");
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
    match run(PathBuf::from(data_dir), owner, first, count) {
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
) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&data_dir, "writer.test")?;
    store.lock_for_delivery()?;
    let stdout = std::io::stdout();
    for seq in first..first + count {
        let message = NewMessage::new(
            owner.clone(),
            "INBOX",
            synthetic::message(seq),
            Class::Journal,
        );
        store.deliver(message)?;
        let mut out = stdout.lock();
        writeln!(out, "stored {seq}")?;
        out.flush()?;
    }
    Ok(())
}
