//! Writes a crafted pack of `N_BEFORE` + `N_AFTER` top-level directories
//! for the build root `ROOT` into `DIR/checkpoint.nckp`, for
//! `bench/memory.sh`: `cargo run --example craft_pack -- DIR ROOT N_BEFORE N_AFTER`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, root, before, after] = &args[..] else {
        eprintln!("usage: craft_pack DIR ROOT N_BEFORE N_AFTER");
        std::process::exit(2);
    };
    let pack = nix_checkpoint::checkpoint::testing::many_dirs_pack(
        root.as_bytes(),
        before.parse().expect("N_BEFORE"),
        after.parse().expect("N_AFTER"),
    );
    std::fs::create_dir_all(dir).expect("create DIR");
    std::fs::write(format!("{dir}/checkpoint.nckp"), &pack).expect("write the pack");
    println!("{} bytes", pack.len());
}
