import CInit

// gvlt-init: PID 1 of a Firestarter image: mounts the Gevulot shares, runs the configured
// program, reports its exit through isa-debug-exit.

var signals = sigset_t()
_ = cinit_block_signals(&signals)

func supervise(_ runtime: Runtime) throws(InitError) -> Outcome {
    guard let command = runtime.command else {
        throw InitError("no command to run: neither the image nor the runtime config sets `command`")
    }
    // Said before the fork, so that everything after this line on the console is the program's (or
    // marked as the init's): `gvlt run --store-stdout` keeps exactly that part.
    Console.say("starting \(command)")
    let main = try runtime.spawn([command] + runtime.args)
    var outcome: Outcome?
    while outcome == nil {
        let signal = cinit_wait_signal(&signals, 1000)
        switch signal {
        case SIGCHLD, -1:
            // Reap every child: the program's, and orphans PID 1 inherits.
            var status: Int32 = 0
            while true {
                let pid = waitpid(-1, &status, WNOHANG)
                if pid <= 0 { break }
                if pid == main {
                    outcome =
                        cinit_wifexited(status) != 0
                        ? .exited(cinit_wexitstatus(status)) : .signaled(cinit_wtermsig(status))
                }
            }
        case SIGTERM, SIGINT, SIGHUP:
            Console.say("forwarding signal \(signal) to the program")
            _ = kill(main, signal)
        default:
            break
        }
    }
    // Whatever the program left running is stopped before the machine goes down.
    _ = kill(-1, SIGTERM)
    System.sleepMilliseconds(100)
    _ = kill(-1, SIGKILL)
    var status: Int32 = 0
    while waitpid(-1, &status, WNOHANG) > 0 {}
    return outcome!
}

func boot() -> (Outcome, RuntimeConfig.DebugExit?) {
    var runtime = Runtime()
    // "version X", from the "gvlt-init version X" marker that `gvlt doctor` reads.
    Console.say(String(cString: cinit_version() + 10))
    do throws(InitError) {
        if EarlyBoot.isInitramfs { try EarlyBoot.run() }
        var config = try RuntimeConfig.load(Runtime.bakedConfig)
        if config.defaultMounts { try runtime.defaultMounts() }
        try NvidiaSetup.run()
        try runtime.apply(config)
        var hops = 0
        while let next = config.followConfig {
            hops += 1
            guard hops <= 8 else { throw InitError("follow-config chains more than 8 configs") }
            guard cinit_exists(next) else {
                Console.say("no runtime config at \(next); using the image's own")
                break
            }
            config = try RuntimeConfig.load(next)
            try runtime.apply(config)
        }
        return (try supervise(runtime), runtime.debugExit)
    } catch {
        return (.initFailed(error.message), runtime.debugExit)
    }
}

let (outcome, debugExit) = boot()
sync()
// One machine-readable line with the exact result, for `gvlt run`.
let status: Int32
switch outcome {
case .exited(let code):
    status = code
    Console.say("exit-status=\(code)")
case .signaled(let signal):
    status = 128 + signal
    Console.say("exit-signal=\(signal)")
case .initFailed(let message):
    status = 255
    Console.say("error: \(message)")
    Console.say("exit-status=255 init-error")
}
let exit = debugExit ?? RuntimeConfig.DebugExit(iobase: 0xf4, iosize: 4, successCode: 3)
// QEMU's isa-debug-exit ends with status (value << 1) | 1. Success writes the value that gives the
// configured success code; a failure writes a different one, so it can never look like success.
let successValue = (exit.successCode &- 1) >> 1
let value = status == 0 ? successValue : successValue &+ 1 &+ UInt32(status & 0x3f)
cinit_drain_console()
if debugExit != nil || status != 0 {
    _ = cinit_debug_exit(exit.iobase, exit.iosize, value)
}
_ = reboot(RB_POWER_OFF)
while true { pause() }
