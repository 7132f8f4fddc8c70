# frozen_string_literal: true

require_relative "test_helper"

# Replays every transcript in proto-json/conformance/ (format: proto-json/conformance/README.md) through this
# client's connection layer, Gantry::Connection: its socket, framing, writer and reader thread, and its sorting
# of the broker's lines into notifications (on_notification) and answers no request of its own waits for
# (on_unmatched, the raw hook; the transcript's requests carry the transcript's ids and go out through
# write_line). The matching rules are those of proto-json/conformance.py.
class ConformanceTest < Minitest::Test
  include GantryTest

  DIRECTORY = ENV.fetch("GANTRY_CONFORMANCE_DIR", File.expand_path("../../../proto-json/conformance", __dir__))
  TRANSCRIPTS = Dir[File.join(DIRECTORY, "*.json")].sort
  READ_TIMEOUT = 30
  # After a step that sends a notification (nothing to read): the broker runs every line in its own task, so
  # nothing orders a notification's effect before the answers to later lines, and a transcript that counts on
  # it (04's step 7 counts a notification's enqueue) would race. A short pause lets it commit first.
  NOTIFICATION_SETTLE = 0.05

  class Mismatch < StandardError; end

  # The broker's lines, in the order the connection's reader thread sorted them.
  class Inbox
    def initialize
      @items = []
      @mutex = Mutex.new
      @arrived = ConditionVariable.new
    end

    def <<(item)
      @mutex.synchronize do
        @items << item
        @arrived.signal
      end
    end

    # The next item, or nil after `timeout` seconds.
    def pop(timeout)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @mutex.synchronize do
        while @items.empty?
          left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          return nil if left <= 0

          @arrived.wait(@mutex, left)
        end
        @items.shift
      end
    end
  end

  # One transcript's connection.
  class Replay
    def initialize(host, port)
      @inbox = Inbox.new
      @notifications = []
      @connection = Gantry::Connection.new(
        host, port,
        on_notification: ->(message) { @inbox << [:notification, message] },
        on_unmatched: ->(value) { @inbox << [:line, value] },
        on_close: ->(_reason) { @inbox << [:closed] }
      )
    end

    def write(line)
      @connection.write_line(line)
    rescue Gantry::ConnectionError
      nil # the broker stopped reading (an oversize line): its answer may still be there to read
    end

    # The next response (skipping the broker's notifications, kept for `notification` steps); nil once closed.
    def read
      loop do
        kind, value = next_item
        case kind
        when :notification then @notifications << value
        when :line then return response(value)
        else return nil
        end
      end
    end

    def notification
      return @notifications.shift if @notifications.any?

      kind, value = next_item
      return nil if kind == :closed
      raise Mismatch, "expected a notification, got #{JSON.generate(value)}" unless kind == :notification

      value
    end

    def closed?
      kind, = @inbox.pop(5)
      kind == :closed
    end

    def close
      @connection.close
    end

    private

    def next_item
      @inbox.pop(READ_TIMEOUT) or raise Mismatch, "no line from the broker within #{READ_TIMEOUT} s"
    end

    def response(value)
      raise Mismatch, "the broker sent a line that is not JSON: #{value[0, 200]}" if value.is_a?(String)

      value
    end
  end

  def self.substitute(value, variables)
    case value
    when String
      variables.each { |name, saved| return saved if value == "${#{name}}" }
      text(value, variables)
    when Array then value.map { |item| substitute(item, variables) }
    when Hash then value.to_h { |key, item| [text(key, variables), substitute(item, variables)] }
    else value
    end
  end

  # ${name} inside a longer string (or an object key) becomes the saved value's text.
  def self.text(string, variables)
    variables.reduce(string) do |result, (name, saved)|
      result.gsub("${#{name}}") { saved.is_a?(String) ? saved : JSON.generate(saved) }
    end
  end

  def self.match(expected, actual, path = "response")
    return if expected == "${any}"
    return contains(expected["${contains}"], actual, path) if expected.is_a?(Hash) && expected.keys == ["${contains}"]

    case expected
    when Hash
      raise Mismatch, "#{path}: expected an object, got #{JSON.generate(actual)}" unless actual.is_a?(Hash)

      expected.each do |key, value|
        if value == "${absent}"
          raise Mismatch, "#{path}: #{key.inspect} should be absent, got #{JSON.generate(actual[key])}" if actual.key?(key)

          next
        end
        raise Mismatch, "#{path}: no #{key.inspect} in #{JSON.generate(actual)}" unless actual.key?(key)

        match(value, actual[key], "#{path}.#{key}")
      end
    when Array
      unless actual.is_a?(Array) && actual.size == expected.size
        raise Mismatch, "#{path}: expected #{expected.size} elements, got #{JSON.generate(actual)}"
      end

      expected.zip(actual).each_with_index { |(value, item), index| match(value, item, "#{path}[#{index}]") }
    else
      same = if [true, false].include?(expected) || [true, false].include?(actual)
               expected.equal?(actual)
             elsif expected.is_a?(Numeric) && actual.is_a?(Numeric)
               expected == actual # 1 equals 1.0
             else
               expected.class == actual.class && expected == actual
             end
      raise Mismatch, "#{path}: expected #{JSON.generate(expected)}, got #{JSON.generate(actual)}" unless same
    end
  end

  # {"${contains}": [a, b]}: an array with elements matching a, then b, in that order, others anywhere.
  def self.contains(wanted, actual, path)
    raise Mismatch, "#{path}: ${contains} takes an array of elements to look for" unless wanted.is_a?(Array)
    raise Mismatch, "#{path}: expected an array, got #{JSON.generate(actual)}" unless actual.is_a?(Array)

    found = 0
    actual.each do |item|
      break if found == wanted.size

      begin
        match(wanted[found], item, path)
        found += 1
      rescue Mismatch
        nil
      end
    end
    return if found == wanted.size

    raise Mismatch, "#{path}: no element matching #{JSON.generate(wanted[found])}" \
                    "#{" after the ones found before it" if found.positive?} in #{JSON.generate(actual)}"
  end

  def self.pick(value, dotted)
    dotted.split(".").reduce(value) { |current, part| current.is_a?(Array) ? current.fetch(Integer(part)) : current.fetch(part) }
  end

  def self.line_of(step, variables)
    return JSON.generate(substitute(step["send"], variables)) if step.key?("send")
    return substitute(step["send_line"], variables) if step.key?("send_line")

    if (repeat = step["repeat_line"])
      return repeat["prefix"] + (repeat["repeat"] * repeat["count"]) + repeat["suffix"]
    end

    raise Mismatch, "a step needs send, send_line or repeat_line: #{JSON.generate(step)}"
  end

  def replay(path)
    transcript = JSON.parse(File.read(path))
    variables = { "queue" => "conf-#{SecureRandom.hex(6)}" }
    host, port = Gantry::Client.address(url)
    connection = Replay.new(host, port)
    transcript.fetch("steps").each_with_index do |step, index|
      run_step(connection, step, variables)
    rescue Mismatch => e
      flunk "#{File.basename(path)} (#{transcript["name"]}) step #{index + 1}: #{e.message}"
    end
  ensure
    connection&.close
  end

  def run_step(connection, step, variables)
    sleep(step["wait_ms"] / 1000.0) if step["wait_ms"]
    if step.key?("notification")
      got = connection.notification or raise Mismatch, "the connection closed before the broker's notification"
      self.class.match(self.class.substitute(step["notification"], variables), got, "notification")
      return
    end

    group = step["pipeline"] || [step]
    group.each { |item| connection.write(self.class.line_of(item, variables)) }
    awaited = group.select { |item| item.key?("expect") }
    responses = awaited.map { connection.read }
    raise Mismatch, "the broker closed the connection instead of answering" if responses.any?(&:nil?)

    if step.key?("answered_in")
      arrival = responses.map { |response| response["id"] if response.is_a?(Hash) }
      expected = self.class.substitute(step["answered_in"], variables)
      raise Mismatch, "answers came in the order #{arrival}, expected #{expected}" unless arrival == expected
    end

    pairs = if step.key?("pipeline")
              by_id = responses.select { |r| r.is_a?(Hash) }.to_h { |r| [JSON.generate(r["id"]), r] }
              awaited.map do |item|
                key = JSON.generate(self.class.substitute(item["expect"], variables)["id"])
                raise Mismatch, "no response with id #{key} among #{JSON.generate(responses)}" unless by_id.key?(key)

                [item, by_id[key]]
              end
            else
              awaited.zip(responses)
            end
    pairs.each do |item, response|
      self.class.match(self.class.substitute(item["expect"], variables), response)
      (item["save"] || {}).each { |name, dotted| variables[name] = self.class.pick(response, dotted) }
    end
    raise Mismatch, "the broker should have closed the connection" if step["closes"] && !connection.closed?

    sleep(NOTIFICATION_SETTLE) if awaited.empty?
  end

  if TRANSCRIPTS.empty?
    define_method(:test_transcripts) { flunk "no conformance transcripts in #{DIRECTORY}" }
  end

  TRANSCRIPTS.each do |path|
    define_method("test_#{File.basename(path, ".json").tr("^A-Za-z0-9", "_")}") { replay(path) }
  end
end
