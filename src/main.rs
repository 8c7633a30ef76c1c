use clap::Parser;

fn main() {
    let cli = nix_checkpoint::cli::Cli::parse();
    std::process::exit(nix_checkpoint::run(cli).code().into());
}
