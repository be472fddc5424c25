//! `netvm run` ends with the status a shell would give: the command's own, 128+N
//! when signal N killed it, 127 when the command is not found, 126 when it cannot
//! be run (a directory, a file without execute permission, a 32-bit or foreign ELF
//! program, refused before launch or, when started inside the session, killed at
//! exec).

mod common;

use common::{TempDir, path_str, run, run_netvm};

#[test]
fn true_exits_zero() {
    run_netvm(&["run", "--", "true"]).assert_code(0);
}

#[test]
fn the_commands_exit_status_is_netvms() {
    for code in [7, 255] {
        run_netvm(&["run", "--", "sh", "-c", &format!("exit {code}")]).assert_code(code);
    }
}

#[test]
fn a_broken_pipe_kills_the_command_as_it_would_natively() {
    // `yes` dies of SIGPIPE (141), unless the command started with SIGPIPE ignored
    // (as Rust leaves it in netvm itself): then it gets EPIPE and exits 1.
    let script = "yes | head -c 1 >/dev/null; echo ${PIPESTATUS[0]}";
    let mut native = std::process::Command::new("bash");
    native.args(["-c", script]);
    assert_eq!(run(native).stdout, "141\n");
    let under = run_netvm(&["run", "--", "bash", "-c", script]);
    under.assert_code(0);
    assert_eq!(under.stdout, "141\n", "the command started with SIGPIPE ignored");
}

#[test]
fn a_command_killed_by_signal_n_gives_128_plus_n() {
    run_netvm(&["run", "--", "sh", "-c", "kill -TERM $$"]).assert_code(143);
    run_netvm(&["run", "--", "sh", "-c", "kill -SEGV $$"]).assert_code(139);
}

#[test]
fn a_command_not_found_gives_127() {
    run_netvm(&["run", "--", "no-such-command-netvm-test"])
        .assert_code(127)
        .assert_stderr_has("no-such-command-netvm-test: command not found");
    run_netvm(&["run", "--", "/nonexistent/netvm-test"])
        .assert_code(127)
        .assert_stderr_has("command not found");
}

#[test]
fn a_directory_gives_126() {
    let dir = TempDir::new("dir");
    run_netvm(&["run", "--", path_str(dir.path())])
        .assert_code(126)
        .assert_stderr_has("Is a directory");
}

#[test]
fn a_file_without_execute_permission_gives_126() {
    let dir = TempDir::new("noexec");
    let script = dir.write("script", b"#!/bin/sh\nexit 0\n", 0o644);
    run_netvm(&["run", "--", path_str(&script)])
        .assert_code(126)
        .assert_stderr_has("Permission denied");
}

/// A complete i386 program (one ELF header, one loadable segment) that calls
/// `exit(42)` with `int $0x80`. Built by hand, so no 32-bit toolchain is needed.
fn i386_exit_42() -> Vec<u8> {
    const BASE: u32 = 0x0804_8000;
    const EHDR: u32 = 52;
    const PHDR: u32 = 32;
    let code: [u8; 12] = [
        0xb8, 1, 0, 0, 0, // mov eax, 1 (exit)
        0xbb, 42, 0, 0, 0, // mov ebx, 42
        0xcd, 0x80, // int 0x80
    ];
    let size = EHDR + PHDR + code.len() as u32;
    let mut elf = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0];
    elf.resize(16, 0);
    let half = |elf: &mut Vec<u8>, v: u16| elf.extend_from_slice(&v.to_le_bytes());
    let word = |elf: &mut Vec<u8>, v: u32| elf.extend_from_slice(&v.to_le_bytes());
    half(&mut elf, 2); // e_type: ET_EXEC
    half(&mut elf, 3); // e_machine: EM_386
    word(&mut elf, 1); // e_version
    word(&mut elf, BASE + EHDR + PHDR); // e_entry
    word(&mut elf, EHDR); // e_phoff
    word(&mut elf, 0); // e_shoff
    word(&mut elf, 0); // e_flags
    half(&mut elf, EHDR as u16); // e_ehsize
    half(&mut elf, PHDR as u16); // e_phentsize
    half(&mut elf, 1); // e_phnum
    half(&mut elf, 0); // e_shentsize
    half(&mut elf, 0); // e_shnum
    half(&mut elf, 0); // e_shstrndx
    word(&mut elf, 1); // p_type: PT_LOAD
    word(&mut elf, 0); // p_offset
    word(&mut elf, BASE); // p_vaddr
    word(&mut elf, BASE); // p_paddr
    word(&mut elf, size); // p_filesz
    word(&mut elf, size); // p_memsz
    word(&mut elf, 5); // p_flags: R+X
    word(&mut elf, 0x1000); // p_align
    elf.extend_from_slice(&code);
    assert_eq!(elf.len(), size as usize);
    elf
}

#[test]
fn the_hand_made_i386_program_runs_natively() {
    // Proves the fixture below is a real, runnable 32-bit program.
    let dir = TempDir::new("i386-native");
    let program = dir.write("exit42", &i386_exit_42(), 0o755);
    let status = run(std::process::Command::new(&program)).code();
    assert_eq!(status, 42, "the i386 fixture did not run natively");
}

#[test]
fn a_32_bit_program_is_refused_before_launch_with_126() {
    let dir = TempDir::new("i386");
    let program = dir.write("exit42", &i386_exit_42(), 0o755);
    run_netvm(&["run", "--", path_str(&program)]).assert_code(126).assert_stderr_has("32-bit");
}

#[test]
fn a_32_bit_program_started_inside_the_session_is_killed_at_exec() {
    let dir = TempDir::new("i386-inner");
    let program = dir.write("exit42", &i386_exit_42(), 0o755);
    let out = run_netvm(&["run", "--", "sh", "-c", "\"$0\"; echo status=$?", path_str(&program)]);
    out.assert_code(0).assert_stderr_has("32-bit");
    assert_eq!(out.stdout, "status=137\n", "{out}");
}

#[test]
fn an_elf_program_for_another_machine_gives_126() {
    // A 64-bit ELF header for AArch64 (e_machine 183): refused from the header alone.
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    header.resize(64, 0);
    header[16..18].copy_from_slice(&2u16.to_le_bytes());
    header[18..20].copy_from_slice(&183u16.to_le_bytes());
    header[20..24].copy_from_slice(&1u32.to_le_bytes());
    let dir = TempDir::new("aarch64");
    let program = dir.write("arm", &header, 0o755);
    run_netvm(&["run", "--", path_str(&program)])
        .assert_code(126)
        .assert_stderr_has(path_str(&program));
}
