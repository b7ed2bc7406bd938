//! The operator tool: inspect gifts, redrive the DLQ, retry FAILED gifts, migrate the
//! database (`gift-admin --help`). The work is in `gift_bins::admin`.

use std::process::ExitCode;

use clap::Parser;
use gift_bins::admin::{self, AdminConfig};

fn main() -> ExitCode {
    admin::main(AdminConfig::parse())
}
