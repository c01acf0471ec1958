import Analysis
import ArgumentParser
import Core
import Foundation
import Report

/// `wayside analyze RESULTS_DIR`: recomputes results.json, the CSV series and
/// report.html from the event logs in a results folder, and checks thresholds.
struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Recompute results.json, CSV series and report.html from a run's event logs.",
        discussion: """
        Reads every *.jsonl below RESULTS_DIR (docs/LOGS.md), groups the logs by stack, \
        computes the metrics of docs/METRICS.md and writes results.json (docs/RESULTS.md), \
        goodput.csv, subflows.csv, handovers.csv, coverage.csv, summary.csv and report.html \
        into RESULTS_DIR. Exits with 1 when a threshold fails.
        """
    )

    @Argument(help: "The results folder holding the run's logs.")
    var resultsDirectory: String

    @Option(name: .customLong("assert"), help: ArgumentHelp("A threshold, e.g. 'max_gap < 600ms' or 'kernel-tcp:survived == false'; repeatable.", valueName: "EXPR"))
    var assertions: [String] = []

    @Option(help: ArgumentHelp("Write the threshold checks as JUnit XML to this file.", valueName: "FILE"))
    var junit: String?

    @Option(help: ArgumentHelp("A silence longer than this is a stall.", valueName: "DURATION"))
    var stallThreshold: String = "100ms"

    @Option(help: ArgumentHelp("Bin width of the goodput series.", valueName: "DURATION"))
    var goodputBin: String = "100ms"

    @Flag(help: "Fail (exit 2) if any log line cannot be read.")
    var strict = false

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    func validate() throws {
        for a in assertions {
            do { _ = try Threshold.parse(a, origin: "--assert") } catch { throw ValidationError(error.description) }
        }
        for (flag, text) in [("--stall-threshold", stallThreshold), ("--goodput-bin", goodputBin)] {
            do throws(QuantityError) {
                guard try Quantity.nonNegativeInterval(text) > .zero else { throw QuantityError(text: text, expected: "a positive duration") }
            } catch { throw ValidationError("\(flag): \(error.description)") }
        }
    }

    func run() throws {
        let thresholds = try assertions.map { try Threshold.parse($0, origin: "--assert") }
        let options = AnalysisOptions(stallThreshold: try Quantity.interval(stallThreshold),
                                      goodputBin: try Quantity.interval(goodputBin))
        let dir = URL(fileURLWithPath: resultsDirectory)
        let files = try Self.logFiles(under: dir)
        guard !files.isEmpty else {
            throw ValidationError("\(resultsDirectory): no event logs (*.jsonl) found")
        }
        var logs: [EventLogFile] = []
        for url in files {
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw ValidationError("\(url.path): cannot read: \(error.localizedDescription)")
            }
            // Bytes, not a String: a line with invalid UTF-8 is one bad line, not an unreadable file.
            let name = Self.relative(url, to: dir)
            logs.append(data.withUnsafeBytes { EventLogFile.parse(utf8: $0.bindMemory(to: UInt8.self), file: name) })
        }
        let problems = logs.flatMap(\.problems)
        for p in problems.prefix(20) { FileHandle.standardError.write(Data("warning: \(p)\n".utf8)) }
        if problems.count > 20 { FileHandle.standardError.write(Data("warning: \(problems.count - 20) more unreadable lines\n".utf8)) }
        let runs = EventLogFile.groupIntoRuns(logs).map { RunAnalysis.analyze(logs: $0, options: options) }
        guard !runs.isEmpty else { throw ValidationError("\(resultsDirectory): no readable event log") }
        let checks = Threshold.evaluate(thresholds, against: runs)

        try write(ResultsDocument.render(runs: runs, checks: checks, options: options), to: dir.appendingPathComponent("results.json"))
        for csv in ResultsDocument.csv(runs: runs) { try write(csv.text, to: dir.appendingPathComponent(csv.name)) }
        try write(HTMLReport.render(runs: runs, checks: checks, title: "Wayside: \(dir.lastPathComponent)"),
                  to: dir.appendingPathComponent("report.html"))
        if let junit { try write(ThresholdCheck.junitXML(checks), to: URL(fileURLWithPath: junit)) }

        if !quiet {
            print(SummaryTable.render(runs), terminator: "")
            for c in checks { print("\(c.passed ? "pass" : "FAIL")  \(c.stack)  \(c.threshold.expression)  (\(c.message))") }
            print("wrote results.json, CSV series and report.html to \(dir.path)")
        }
        if checks.contains(where: { !$0.passed }) { throw ExitCode(1) }
        if strict, !problems.isEmpty { throw ExitCode(2) }
    }

    static func logFiles(under dir: URL) throws -> [URL] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationError("\(dir.path): not a directory")
        }
        guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { return [] }
        var urls: [URL] = []
        for case let url as URL in e where url.pathExtension == "jsonl" { urls.append(url) }
        return urls.sorted { $0.path < $1.path }
    }

    static func relative(_ url: URL, to dir: URL) -> String {
        let base = dir.standardizedFileURL.path
        let path = url.standardizedFileURL.path
        return path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : path
    }

    func write(_ text: String, to url: URL) throws {
        do { try Data(text.utf8).write(to: url, options: .atomic) } catch {
            throw ValidationError("\(url.path): cannot write: \(error.localizedDescription)")
        }
    }
}
