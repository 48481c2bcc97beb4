import CInit

/// The NVIDIA driver in the guest (images built with `--accel nvidia`): loads the modules listed in
/// /etc/gvlt/nvidia in order, then makes the device nodes CUDA opens, the way nvidia-modprobe would:
/// /dev/nvidiactl and /dev/nvidia0..N on the driver's major, /dev/nvidia-uvm and -tools on the major
/// /proc/devices gives nvidia-uvm. Without a GPU the driver refuses to load (ENODEV); that is one
/// clear line and the program runs anyway, unless the image was built with --require-gpu.
enum NvidiaSetup {
    static let configPath = "/etc/gvlt/nvidia"

    struct Config {
        var driver = "unknown"
        var requireGPU = false
        var modules: [String] = []
    }

    static func parse(_ bytes: [UInt8]) throws(InitError) -> Config {
        var config = Config()
        var number = 0
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            let line = String(decoding: rawLine, as: UTF8.self)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw InitError("\(configPath): line \(number): expected `key value`") }
            switch parts[0] {
            case "driver": config.driver = parts[1]
            case "require-gpu":
                guard parts[1] == "yes" || parts[1] == "no" else {
                    throw InitError("\(configPath): line \(number): require-gpu is yes or no")
                }
                config.requireGPU = parts[1] == "yes"
            case "module": config.modules.append(parts[1])
            default: throw InitError("\(configPath): line \(number): unknown key `\(parts[0])`")
            }
        }
        return config
    }

    static func run() throws(InitError) {
        guard let bytes = System.readFile(configPath) else { return }
        let config = try parse(bytes)
        // The nodes need /proc/devices and a /dev to make them in, whatever the config's default mounts.
        if !cinit_exists("/proc/devices") {
            System.makeDirectory("/proc")
            try System.mount("proc", "/proc", "proc", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC))
        }
        if !cinit_exists("/dev/null") {
            System.makeDirectory("/dev")
            try System.mount("devtmpfs", "/dev", "devtmpfs", flags: UInt(MS_NOSUID))
        }
        for module in config.modules {
            let name = KernelCommandLine.moduleName(ofPath: module)
            let error = System.tryLoadModule(module)
            if error != 0 {
                // Loading nvidia.ko is where a missing GPU shows: the driver probes and finds none.
                if name == "nvidia" && error == ENODEV {
                    let message = "no NVIDIA GPU found: the NVIDIA \(config.driver) driver found no device to drive"
                    if config.requireGPU {
                        throw InitError(message + ", and this image requires one (built with --require-gpu)")
                    }
                    Console.say("nvidia: " + message + "; running the program without a GPU")
                    return
                }
                throw InitError("nvidia: cannot load kernel module \(module): \(String(cString: strerror(error)))")
            }
            Console.say("nvidia: loaded \(name)")
        }
        try makeDeviceNodes()
    }

    static func makeDeviceNodes() throws(InitError) {
        let devices = String(decoding: System.readFile("/proc/devices") ?? [], as: UTF8.self)
        func major(_ name: String) -> UInt32? {
            var inCharacter = false
            for line in devices.split(separator: "\n") {
                if line.hasPrefix("Character devices") { inCharacter = true; continue }
                if line.hasPrefix("Block devices") { inCharacter = false; continue }
                let fields = line.split(separator: " ")
                if inCharacter, fields.count == 2, fields[1] == name, let value = UInt32(fields[0]) { return value }
            }
            return nil
        }
        guard let nvidia = major("nvidia-frontend") ?? major("nvidia") else {
            throw InitError("nvidia: the driver loaded but /proc/devices lists no nvidia device major")
        }
        try makeNode("/dev/nvidiactl", major: nvidia, minor: 255)
        // One directory per GPU the driver bound, as nvidia-modprobe counts them.
        let gpus = System.listDirectory("/proc/driver/nvidia/gpus").count
        for index in 0..<gpus { try makeNode("/dev/nvidia\(index)", major: nvidia, minor: UInt32(index)) }
        if let uvm = major("nvidia-uvm") {
            try makeNode("/dev/nvidia-uvm", major: uvm, minor: 0)
            try makeNode("/dev/nvidia-uvm-tools", major: uvm, minor: 1)
        }
        if cinit_exists("/proc/driver/nvidia-modeset") || major("nvidia-modeset") != nil {
            try makeNode("/dev/nvidia-modeset", major: nvidia, minor: 254)
        }
        Console.say("nvidia: \(gpus) GPU\(gpus == 1 ? "" : "s"), device nodes made")
    }

    static func makeNode(_ path: String, major: UInt32, minor: UInt32) throws(InitError) {
        _ = unlink(path)
        guard cinit_mknod_char(path, major, minor, 0o666) == 0 else {
            throw InitError("nvidia: cannot make \(path) (\(major):\(minor)): \(Console.errnoText())")
        }
    }
}
