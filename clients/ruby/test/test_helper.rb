# frozen_string_literal: true

$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "minitest/autorun"
require "json"
require "securerandom"
require "socket"
require "gantry"

unless ENV["GANTRY_URL"].to_s.strip != ""
  abort "GANTRY_URL is not set: these tests need a live broker. Run them with\n  " \
        "python3 ../../scripts/with_broker.py -- ruby bin/test   (from clients/ruby)"
end

module GantryTest
  URL = ENV.fetch("GANTRY_URL")
  QUIET_LOGGER = Logger.new(nil)

  def url
    URL
  end

  def client(**options)
    (@clients ||= []) << Gantry::Client.new(url: URL, name: "ruby-tests", **options)
    @clients.last
  end

  def unique_queue(prefix = "rb")
    "#{prefix}-#{SecureRandom.hex(6)}"
  end

  # Waits until the block returns something truthy (and returns it), failing after `timeout` seconds.
  def eventually(timeout = 5, message = "the condition never held")
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      value = yield
      return value if value
      flunk("#{message} (within #{timeout} s)") if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.05
    end
  end

  # Runs a worker in a thread; returns the thread (its value is run's).
  def start_worker(worker)
    thread = Thread.new { worker.run }
    thread.report_on_exception = true
    (@workers ||= []) << [worker, thread]
    eventually(5, "the worker never connected") { worker.session_id }
    thread
  end

  def teardown
    (@workers || []).each do |worker, thread|
      worker.stop
      thread.join(5)
    end
    (@clients || []).each(&:close)
    super
  end

  # A broker stand-in on a local port, for what a real broker cannot be made to do on cue (-32004, answers in a
  # chosen order). `handler` gets each request (a Hash) and the FakeBroker; it returns a response Hash, an
  # Array of lines to write, or nil (answer nothing now). `requests` records every request line.
  class FakeBroker
    attr_reader :requests, :connections

    def initialize(&handler)
      @handler = handler
      @server = TCPServer.new("127.0.0.1", 0)
      @requests = Thread::Queue.new
      @connections = 0
      @sockets = []
      @thread = Thread.new { loop { serve(@server.accept) } rescue IOError }
    end

    def url
      "127.0.0.1:#{@server.addr[1]}"
    end

    def serve(socket)
      @connections += 1
      @sockets << socket
      Thread.new do
        while (line = socket.gets)
          request = JSON.parse(line)
          @requests << request
          reply = @handler.call(request, self, socket)
          (reply.is_a?(Array) ? reply : [reply]).compact.each do |response|
            socket.write((response.is_a?(String) ? response : JSON.generate(response)) + "\n")
          end
        end
      rescue IOError, SystemCallError
        nil
      end
    end

    def self.result(request, result)
      { "jsonrpc" => "2.0", "id" => request["id"], "result" => result }
    end

    def self.error(request, code, message, data = nil)
      error = { "code" => code, "message" => message }
      error["data"] = data if data
      { "jsonrpc" => "2.0", "id" => request["id"], "error" => error }
    end

    def self.hello(request)
      result(request, { "broker" => "fake", "protocol" => 1, "session_id" => SecureRandom.uuid })
    end

    # Every request recorded so far.
    def seen
      list = []
      list << @requests.pop until @requests.empty?
      (@seen ||= []).concat(list)
    end

    def close
      @server.close
      @sockets.each { |socket| socket.close rescue nil } # rubocop:disable Style/RescueModifier
    end
  end
end
