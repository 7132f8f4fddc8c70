# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"

# matrix.rb's contract, run as the matrix runs it: separate processes, broker from GANTRY_URL.
# (`step`: the operation's first step gets the trail ["python"] and sets it to ["python", "ruby"].)
class MatrixTest < Minitest::Test
  include GantryTest

  MATRIX = File.expand_path("../matrix.rb", __dir__)

  def matrix(*args)
    Open3.capture3({ "GANTRY_URL" => url }, RbConfig.ruby, MATRIX, *args.map(&:to_s))
  end

  def test_enqueue_then_work
    queue = unique_queue("mx")
    out, err, status = matrix("enqueue", 3, queue)
    assert status.success?, err
    ids = out.lines.map(&:strip)
    assert_equal 3, ids.size
    gantry = client
    ids.each_with_index do |id, n|
      assert_equal ["matrix.echo", { "from" => "ruby", "n" => n }, queue], gantry.job(id).values_at("type", "args", "queue")
    end

    _, err, status = matrix("work", 3, queue)
    assert status.success?, err
    ids.each_with_index do |id, n|
      assert_equal ["completed", { "by" => "ruby", "from" => "ruby", "n" => n }], gantry.job(id).values_at("state", "result")
    end
  end

  def test_step
    queue = unique_queue("mx")
    gantry = client
    id = gantry.start_operation("matrix.op", branches: { main: %w[matrix.step matrix.step] },
                                             globals: { "trail" => ["python"] }, queue: queue)["id"]
    _, err, status = matrix("step", queue)
    assert status.success?, err
    operation = gantry.operation(id)
    assert_equal [{ "trail" => %w[python ruby] }, 1], operation.values_at("globals", "index")
    assert_equal "completed", operation["steps"][0]["state"]

    _, err, status = matrix("step", queue) # the trail as the second step reads it
    assert status.success?, err
    assert_equal ["completed", { "trail" => %w[python ruby ruby] }], gantry.operation(id).values_at("state", "globals")
  end

  def test_usage
    _, err, status = matrix("nonsense", 1, "q")
    assert_equal 64, status.exitstatus
    assert_match(/usage/, err)
    _, err, status = matrix("step", "q", "extra")
    assert_equal 64, status.exitstatus
    assert_match(/step QUEUE/, err)
  end
end
