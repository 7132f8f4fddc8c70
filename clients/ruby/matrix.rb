#!/usr/bin/env ruby
# frozen_string_literal: true

# The Ruby side of the cross-language matrix test (the broker from $GANTRY_URL):
#   ruby clients/ruby/matrix.rb enqueue COUNT QUEUE   enqueue COUNT matrix.echo jobs, args {"from": "ruby", "n": i},
#                                                     print each id on its own line (in order of i), exit 0
#   ruby clients/ruby/matrix.rb work COUNT QUEUE      work QUEUE with a matrix.echo handler until COUNT jobs have
#                                                     completed, exit 0; exit 1 after 60 s without finishing
#   ruby clients/ruby/matrix.rb step QUEUE            work QUEUE with a matrix.step handler (a step of an operation:
#                                                     it sets the global "trail" to the trail it read plus "ruby")
#                                                     until one step has completed, exit 0; exit 1 after 60 s
$LOAD_PATH.unshift(File.join(__dir__, "lib"))
require "gantry"

command = ARGV[0]
if command == "step" && ARGV.size == 2
  queue = ARGV[1]
elsif ARGV.size == 3 && %w[enqueue work].include?(command) && ARGV[1].match?(/\A\d+\z/)
  count = Integer(ARGV[1])
  queue = ARGV[2]
else
  warn "usage: ruby #{$PROGRAM_NAME} enqueue|work COUNT QUEUE | step QUEUE   (broker from GANTRY_URL)"
  exit 64
end
$stdout.sync = true

begin
  case command
  when "enqueue"
    client = Gantry::Client.new(url: ENV.fetch("GANTRY_URL", nil), name: "matrix-ruby")
    count.times { |n| puts client.enqueue("matrix.echo", { "from" => "ruby", "n" => n }, queue: queue) }
    client.close
  when "work"
    echo = ->(args) { { "by" => "ruby", "from" => args["from"], "n" => args["n"] } }
    worker = Gantry::Worker.new(url: ENV.fetch("GANTRY_URL", nil), queues: [queue], concurrency: 4,
                                handlers: { "matrix.echo" => echo }, max_jobs: count,
                                id: "matrix-ruby:#{Process.pid}", logger: Logger.new($stderr, level: Logger::WARN))
    runner = Thread.new { worker.run }
    unless runner.join(60)
      warn "matrix: #{count} jobs did not complete within 60 s"
      exit 1
    end
  when "step"
    stepped = false
    step = lambda do |_args, job|
      raise Gantry::PermanentError, "job #{job.id} is not a step of an operation" unless job.operation

      trail = job.operation["globals"]["trail"] || []
      stepped = true
      Gantry::StepResult.new(set: { "trail" => trail + ["ruby"] })
    end
    worker = Gantry::Worker.new(url: ENV.fetch("GANTRY_URL", nil), queues: [queue], concurrency: 1,
                                handlers: { "matrix.step" => step }, max_jobs: 1,
                                id: "matrix-ruby:#{Process.pid}", logger: Logger.new($stderr, level: Logger::WARN))
    runner = Thread.new { worker.run }
    unless runner.join(60) && stepped
      warn "matrix: no matrix.step step completed within 60 s"
      exit 1
    end
  end
rescue Gantry::Error, ArgumentError => e
  warn "matrix: #{e.class}: #{e.message}"
  exit 1
end
