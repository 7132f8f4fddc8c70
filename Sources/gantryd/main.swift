import NIOCore
import NIOPosix

// Swift concurrency runs on NIO's event loops, so a request does not hop between two thread pools on its way
// from the socket to PostgreSQL and back. This must happen before any task starts, hence a main.swift.
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
await Gantryd.runFromCommandLine()
