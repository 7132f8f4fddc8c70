# frozen_string_literal: true

require_relative "lib/gantry/version"

Gem::Specification.new do |spec|
  spec.name = "gantry"
  spec.version = Gantry::VERSION
  spec.summary = "Client, worker and ActiveJob adapter for the Gantry job broker"
  spec.description = "Talks to gantryd over newline-delimited JSON-RPC 2.0: a thread-safe pipelined client, " \
                     "a threaded worker that obeys the broker's quiet and stop orders, and an ActiveJob " \
                     "queue adapter (config.active_job.queue_adapter = :gantry)."
  spec.authors = ["Gantry developers"]
  spec.required_ruby_version = ">= 3.0"
  spec.files = Dir["lib/**/*.rb", "README.md", "matrix.rb"]
  spec.require_paths = ["lib"]
  spec.metadata["rubygems_mfa_required"] = "true"

  # No runtime dependencies: the standard library only. ActiveJob is needed only for the adapter and
  # Gantry::ActiveJobWorker (tested with 6.1, Debian 12's ruby-activejob). OpenTelemetry (opentelemetry-api) is
  # used for tracing when the application has loaded it, and never required (see Gantry::Tracing).
  spec.add_development_dependency "activejob", ">= 6.1"
  spec.add_development_dependency "minitest", ">= 5.15"
end
